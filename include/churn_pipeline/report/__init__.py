"""The run report (``html``: the entry; ``view`` and ``artefacts``: what it says; ``plots``: its figures;
``templates/``: its page) and the run summaries (``summary``)."""
