"""Media I/O on the project time base (25 fps, 16 kHz mono); numpy, PyAV and OpenCV, no torch.

- `decode`: decode_media / probe_media (any PyAV-readable file or bytes -> MediaClip)
- `encode`: write_mp4 (H.264 yuv420p + AAC)
- `resample`: resample_audio (zero-phase windowed-sinc polyphase)
- `roi`: the mouth-crop conventions (face-box, mean-face), crop_face(s), crop_mouth(s)
- `faces`: Haar face detector calibrated to the face-box convention, FaceTracker (baseline)
- `landmarks`: BlazeFace detector + 468-point face mesh (MediaPipe models as ONNX, `models/`)
- `face_tracking`: LandmarkTracker (stable ids, smoothed landmarks, bounded re-detection)
- `noise`: mix_at_snr, make_babble
- `jpeg`: decode_jpeg that refuses truncated/corrupt JPEGs
- `container_stream`: ContainerStreamDecoder for webm/mp4/mkv bytes arriving in pieces

Submodules are imported explicitly (`from avsync.media.decode import decode_media`) so that
importing one never pulls in OpenCV or PyAV for the others.
"""
