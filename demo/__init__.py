"""The SYNTHETIC central-Italy demo: a registry generator and the demo build.

Kept outside the ``geo`` library (which never imports it) because none of it is
needed to ingest, release or estimate exposure: it makes fake but realistic inputs for
the dashboard, the tour, the tests and the accuracy benchmark. It runs from a checkout
and reads the shipped inputs in the repository's ``data/`` folder.

- :mod:`demo.places`: regions, provinces and settlements of the scenario;
- :mod:`demo.istat`: ISTAT's foreign residents by province, area and country;
- :mod:`demo.cases`: the true cases drawn from them;
- :mod:`demo.registry`: the raw source files (identifiers, bad rows) and the truth;
- :mod:`demo.build`: registry → ingest → the releases shipped in ``data/demo``;
- :mod:`demo.accuracy`: the exposure estimate against the known truth.

Command line: ``python -m demo registry`` and ``python -m demo build``.
"""
