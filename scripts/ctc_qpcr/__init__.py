"""ctc-qpcr: the science behind the ctc-qpcr Snakemake workflow.

Each module holds one stage of the method in ``docs`` of the project
(``docs/methods.md`` in the repository is the method reference). Snakemake
``script:`` files in ``scripts/`` are thin adapters around these functions.
"""

__version__ = "0.1.0"
