"""avsync: streaming audio-visual speech representations you can train, export and serve.

The package root stays import-light on purpose: `import avsync` must not pull in torch,
onnxruntime or PyAV, so that every layer (and the CLI's --help) starts fast.
"""

__version__ = "0.1.0"
