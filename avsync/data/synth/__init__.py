"""The synthetic LRS2-style corpus (`avsync synth`): espeak-ng voices, rendered talking faces.

Public API (import from the modules; this package imports nothing so `--help` stays fast):
- `corpus.SynthConfig`, `corpus.generate_corpus(config, progress=True) -> CorpusSummary`
- `scenes.generate_scenes(seed, count, out, text, workers, progress)`, `scenes.make_scene`
- `clips.make_clip(speaker, rng, text)`, `speakers.make_speaker(seed, index)`
- `espeak.synthesize(words, voice) -> Speech` (audio @ 16 kHz, word and phoneme timing)
- `visemes.articulation_track(phonemes, n_frames, offset)`, `face.render_clip(...)`
- `measure.mouth_opening`, `measure.audio_energy`, `measure.best_lag`: lip-sync checks

Modules: espeak (libespeak-ng via ctypes), grammar (GRID commands), sentences (fortunes),
visemes (phonemes → co-articulated mouth parameters), mouth and face (the renderer), speakers,
clips (one utterance), corpus (LRS2 layout, splits), scenes (ASD), workers, measure, cli.
"""
