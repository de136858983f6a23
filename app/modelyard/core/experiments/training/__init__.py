"""Training: the model catalogue, preprocessing from the schema, training jobs and reproduction.

The public API, by module (each imports scikit-learn only inside the functions that need it,
so the window can build forms and job specs without loading it on the main thread... except
:func:`catalogue.param_form`, which must look at the estimator class: call it once off the
main thread, or accept about a second on first use):

* :mod:`.catalogue`  - ``MODELS``, ``list_models``, ``param_form``, ``coerce_params``,
  ``default_search_space``;
* :mod:`.preprocess` - ``describe_preprocessing`` (plain JSON the GUI shows and edits) and
  ``build_preprocessor`` (the scikit-learn ColumnTransformer);
* :mod:`.spec`       - ``TrainSpec`` (what a run records and reproduce replays),
  ``train_spec_job``, ``reproduce_spec_job``;
* :mod:`.train`      - the job ``train(ctx, *, spec)``, ``train_and_wait``,
  ``mark_runs_of_job_cancelled``; its docstring lists every artifact and its JSON;
* :mod:`.reproduce`  - the job ``reproduce(ctx, *, run_id)``.
"""
