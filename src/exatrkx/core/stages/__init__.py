"""The five pipeline stages, one a module.

Contract (every stage takes and returns torch tensors, on CPU or GPU):

========  ==============================================  ===============================
stage     call                                             shapes
========  ==============================================  ===============================
embed     ``embed(model, features)``                       [N, 3] f32 -> [N, D] f32
build     ``build_edges(embedding, radius, k, backend)``   [N, D] f32 -> [2, E] i64
          or ``build_layer_pairs(embedding, layers)``      [N, 4] f32 -> [2, E] i64
filter    ``filter_edges(model, features, edges, cut)``    -> kept [2, E'] i64, scores [E]
gnn       ``classify_edges(model, features, edges)``       -> scores [E'] f32 in [0, 1]
label     ``label_event(features, edges, scores, cut)``    -> labels [N] i64, -1 = no track
========  ==============================================  ===============================

The build method is a setting (``PipelineConfig.build_method``): fixed-radius neighbours in
a learnt embedding (:mod:`~exatrkx.core.stages.build`) or learnt layer pairs and windows
(:mod:`~exatrkx.core.stages.layerpairs`, whose embed stage gives each hit its layer).

The label stage ends with the track selection of :mod:`exatrkx.core.stages.select` (minimum
fitted pT).

Each stage also takes several events at once (``embed_events``, ``build_events``,
``filter_events``, ``classify_events``, ``label_events``): one disjoint graph, one forward
pass per net (:mod:`exatrkx.core.batch`); the one-event functions above are batches of one,
so an event gets the same result alone and in any batch.

Edges are canonical: ``edges[0] > edges[1]``, no self loops, no duplicates, sorted.
"""
