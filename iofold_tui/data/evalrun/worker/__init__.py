"""The sandbox worker: stdlib-only modules started as ``python -I -S worker/main.py`` (never imported by
the app, which only reads this folder's path). ``confine`` applies the operating system's layers,
``proxies``, ``restrict`` and ``audit`` the Python ones, ``main`` speaks the protocol and runs the eval."""
