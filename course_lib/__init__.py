"""course_lib: the tested library behind the course *Efficient CNNs, from the weight matrix up*.

Layers (an import only ever goes downwards; ``tests/test_project.py`` checks the graph):

1. **core**: ``args`` (argument checks), ``config`` (profiles, device, seeding, paths, threads),
   ``report`` (the report shape), ``stats`` (intervals and paired tests: how sure a measurement is),
   ``surgery`` (which layers, replace a layer, hooks, bit packing),
   ``measure`` (parameters, MACs, bytes, latency, activation memory), ``data``, ``train``,
   ``checkpoints`` (manifest, hashes, safe loading), ``models`` (the small reference networks and the
   conv-norm-activation builder), ``channels`` (channel connectivity: channel ops, path counts, the
   connectivity explorer and its presets), ``widgets`` (the explorer pattern), ``states`` (the base
   of explorer states), ``checks`` (exercise checkers and ``checks.claim``), ``claims``.
2. **chapters**, one module each (a chapter may import an earlier one, never a later one):
   ``conv`` 01, ``quant`` (+ ``fixedpoint``, ``ternary``) 02, ``lowrank`` 03, ``prune`` (+ ``sparse``)
   04, ``compress`` (+ ``huffman``, ``compressed_file``) 05, ``igc`` 06, ``resnets`` (+ ``resnext``) 07,
   ``densenet`` 08, ``smallnets`` (+ ``squeezenets``) 09, ``wae`` (+ ``haar``) 10, ``capstone`` 11,
   ``deploy`` (+ ``distill``) 12 (distillation, ONNX export, real int8 in ONNX Runtime; it loads
   ``onnx`` and ``onnxruntime`` inside its functions, so ``import course_lib`` stays fast).
3. **catalogue and tools**: ``recipes`` (every network by name, training recipes), the CLI
   (``python -m course_lib``), ``grading`` (submissions graded against the release, each confined by
   ``sandbox``: limits, a write fence, every process ended), ``editions`` (student, instructor, the
   learner's workspace, the HTML edition), ``slides`` (every notebook's slide structure and its
   rules), and the ``exercises`` package: one module per chapter (``exercises.ch07``) with that
   chapter's checkers.

Conventions every module follows (write new code the same way):

- **In place or a copy.** A transform that attaches something to a model's existing layers (pruning
  masks, shared weights, quantizers) changes the model *in place* and returns it
  (``prune.magnitude_prune``, ``quant.share_weights``, ``quant.quantize_model``,
  ``compress.deep_compress``). A transform that builds layers of new shapes or types returns a *copy*
  and leaves its input untouched (``lowrank.compress_model``, ``prune.prune_channels``,
  ``quant.fixed_point_model``, ``quant.compress_weights``). The first line of the docstring says which.
- **Words.** ``sparsity`` is the fraction of weights (or channels) *removed*; ``budget`` is the
  fraction of a cost *kept*; ``bits`` is a bit width.
- **Choosing layers.** ``layers=`` names the layers a function works on (``None``: its default
  set; names come from ``model.named_modules()``; ``surgery.weight_layers`` checks them). A setting
  that may differ per layer takes either one value or a ``{layer name: value}`` dict
  (``sparsity={"fc1": 0.9}``, ``bits={"conv1": 8, "fc1": 5}``).
- **Reports** are ``report.Rows``: a list of dataclass rows with ``.table(columns=None)``,
  ``.find(**key)`` (the one matching row; a ``KeyError`` that lists what exists) and ``.as_dicts()``.
  How a column looks is declared on the row's field (``report.column(heading, format, scale=,
  align=, hidden=)``, or ``@report.computed`` for a property), never in a ``table()`` override; a
  total line is a ``footer()``. Each report class has a name of its own (``capstone.RecipeReport``).
- **Explorers** of a thing ``X``: a pure, tested ``X_state(...)`` returning a frozen dataclass
  (``XState``, derived from ``states.State``: a misspelt field fails where the state is built),
  ``draw_X(state, fig)``, ``X_readout(state)`` (one line of text) and ``X_explorer(...)``, which wires
  them into a ``widgets.Explorer`` with its controls.
- **Bad input**: ``args.check_*`` — ``TypeError`` for a wrong type, ``ValueError`` for a wrong value,
  the message names the parameter and the rule; NaN and inf are bad input too (``args.check_finite``
  for a tensor). Every argument is checked *before* anything changes: a rejected in-place transform
  leaves its model as it was. ``tests/test_reliability.py`` and ``tests/test_reliability_train.py``
  are the catalogue of these cases.
- **Weights from a file** go in through ``checkpoints.load_state``, which names what differs when
  they are another architecture's; files are read with ``weights_only=True`` (``checkpoints``).
- **Results say how sure they are**: an accuracy with ``stats.accuracy_interval``, two models on the
  same images with ``stats.compare`` (holds / does not hold / within noise; ``difference_interval``
  for "loses at most x points", read against the bound by ``stats.bound_verdict``), two latencies
  from interleaved rounds (``measure.latency_rounds``) with ``stats.timing_verdict``; a notebook
  states a paper's claim with ``checks.claim(..., kind=, within_noise=, why=)`` — kind "empirical"
  (a measurement decides it), "derivation" (arithmetic, an identity) or "course" (not a paper's
  claim); ``why`` names the mechanism of a claim that does not hold.
- **Long runs**: where a notebook's experiment needs more than its quick budget, the same library
  function runs offline on the full schedule (e.g. ``python -m course_lib.resnets race``,
  ``python -m course_lib train --recipe wae-l0.1-fmnist --register``), its result ships in
  ``data/checkpoints`` with its curve and command, and the notebook runs the short version live and
  decides the claim on the long run.
- **Shipping a model** is ``checkpoints.ship(model, folder, name, recipe=, seed=, epochs=,
  test_accuracy=, curve=, command=)``: the weights, their sha256 and the manifest entry, written by
  nothing else. Every shipped model has a recipe (``recipes.RECIPES``) and is rebuilt by
  ``python -m course_lib train --recipe NAME --register`` (``train.fit`` from scratch, or the recipe's
  ``maker`` for a model fine-tuned from another checkpoint: ``capstone``, ``wae``).
- **Environment knobs** (``COURSE_PROFILE``, ``COURSE_DRY_RUN``, ``COURSE_THREADS``, ``COURSE_DEVICE``,
  ``COURSE_DATA_DIR``, ``COURSE_CHECKS``, ``COURSE_CLAIMS_FILE``) are read in ``config`` (and
  ``checks``); the docstring of every function a knob changes says so (``train.evaluate`` reads two
  batches in the dry run), and ``config.describe()`` prints one line for each knob that is set. An
  installed ``course_lib`` (no checkout beside it) finds its data and checkpoints through
  ``COURSE_DATA_DIR``, or says that it needs it.
- **Exercises**: a chapter module keeps the idea, its tested version and its explorer; what judges
  a learner's answer lives in ``course_lib.exercises.chNN`` — ``@checks.checker(title, answers=...)``
  compares with an independent computation (a PyTorch op, autograd, brute force, a published number)
  and refuses a submission that calls the library's own version (``answers``). A public ``check_*``
  name is an exercise checker there, or an argument check of the core (``args.check_*``, and the
  model / state-dict checks ``models.check_input``, ``models.check_widths``, ``measure.check_not_meta``,
  ``checkpoints.check_fits``); chapter modules have neither checkers nor public ``reference_*`` answers
  (``tests/test_exercises_contract.py``).
- **Real bytes** are the bytes of a written file: ``measure.file_bytes``.
- Public names are listed in ``__all__`` and carry type hints, which ``mypy`` checks (config in
  ``pyproject.toml``; a ``# type: ignore[code]`` only where torch's stubs are wrong, with the reason);
  ``ruff format`` (120 columns) and ``ruff check`` keep the style; ``make test`` runs all three over
  ``course_lib``. Imports sit at the top of a module (matplotlib, ipywidgets and other heavy optional
  tools may be imported where they are used). No module passes 1,000 lines: a module that grows is
  split by concept (``prune`` → ``sparse``), and the chapter module re-exports the names.
"""

__version__ = "0.1.0"
