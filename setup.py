from setuptools import find_packages, setup

setup(
    name="espnet2_ttt",
    version="0.1.0",
    description="Text-to-Talk (TtT): AR text + absorbing-diffusion audio in one Transformer, as an ESPnet plugin",
    packages=find_packages(include=["espnet2_ttt", "espnet2_ttt.*"]),
    python_requires=">=3.10",
    install_requires=[
        "espnet==202511",
        "torch==2.11.0",
        "torchaudio==2.11.0",
        "sentencepiece",
        "kaldiio",
        "humanfriendly",
        "typeguard",
        "pyyaml",
        "soundfile",
        "editdistance",
    ],
    extras_require={
        "test": ["pytest"],
        "recipe": ["espnet_model_zoo", "pocketsphinx"],
        "pretrained": ["transformers==5.24.0"],  # the hf_causal_lm backbone (imported only when used)
    },
    entry_points={
        "console_scripts": [
            "ttt_train=espnet2_ttt.bin.ttt_train:main",
        ]
    },
)
