"""The sandbox worker: stdlib-only modules started as ``python -I -S worker/main.py`` (never imported by
the app, which only reads this folder's path). ``confine`` applies the operating system's layers,
``restrict`` the Python ones, ``main`` speaks the protocol and runs the eval."""
