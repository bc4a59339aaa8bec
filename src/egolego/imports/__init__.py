"""Importers of the files the LEGO authors released (Hugging Face ``bolinlai/LEGO-*``), into egolego's formats.

- ``official_ldm``: the LDM Lightning ``.ckpt`` -> a ``LegoPipeline`` folder (``ldm_layout`` reads and accounts for
  its keys, ``compvis_names`` names them, ``lightning_ckpt`` loads the pickle safely);
- ``lego_features``: the VLLM features (``.npy`` per frame) -> an embedding store;
- ``lego_dataset``: the dataset JSONs + frames -> a pairs manifest.

Every importer reads local files only; nothing is downloaded.
"""
