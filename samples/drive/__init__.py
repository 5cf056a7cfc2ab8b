"""The sample drive: 1280x720 frames rendered by `python -m training.synth.scenes samples/drive --clip -n 16 --seed 1`
(procedural road scene, synthetic plate; no third-party image). Shipped in the wheel as ``sdk.sample_drive``."""
