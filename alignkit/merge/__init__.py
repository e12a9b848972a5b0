"""Model merging: task arithmetic, TIES, DARE and linear averaging of full models and LoRA adapters.

`ops` holds the pure tensor operations, `sources` reads inputs tensor by tensor, `run.run_merge`
streams a merge into a Hugging Face folder, `sparsity` measures deltas (for PAFT), `config` is the
command's config (the `alignkit merge` flags come from it). Import the submodules directly, e.g.
`from alignkit.merge.run import run_merge`.
"""
