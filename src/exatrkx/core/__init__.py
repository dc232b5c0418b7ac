"""The pipeline itself: feature encoding, nets, stages and the in-process pipeline.

- :mod:`exatrkx.core.features`: the hit features and their checks;
- :mod:`exatrkx.core.nets`: building blocks of the nets;
- :mod:`exatrkx.core.stages`: embed, build, filter, gnn, label (one a module);
- :mod:`exatrkx.core.models`: the three nets together (build, save, load, TorchScript);
- :mod:`exatrkx.core.pipeline`: the pipeline (option 0) over five stage callables;
- :mod:`exatrkx.core.allocator`: malloc settings of every process that runs stages.
"""
