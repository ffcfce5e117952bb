"""From a corpus on disk to a training batch.

- `index`: LRS2 / LRS3 / synthetic layouts -> `Manifest` (JSON Lines); `segment` cuts long clips.
- `prepare`: decode + crop once -> shards; `cache.PreparedCache` reads them as memmap views.
- `dataset`: the torch `AVSpeechDataset`, `collate`, `LengthBucketSampler` (the only torch module).
- `report`, `stats`: what was skipped and why; how big a corpus is. `cli`: `avsync data ...`.
- `synth`: the synthetic LRS2-style corpus generator.
Nothing is imported here, so `import avsync.data.index` never pulls in torch.
"""
