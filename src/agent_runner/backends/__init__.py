"""Where commands run: the host, or one sandbox backend per package.

``base`` is the contract (Backend opens Shells; a Shell runs one command at a time),
``registry`` maps a backend name to its package and the extra it needs, ``local`` is the
host. The in-sandbox ``executor`` and the runner's end of its protocol (``channel``) are
shared by every remote backend; ``owner`` is the identity written on every sandbox so that
orphans can be told. Each sandbox backend is a package of its own (``docker/``) and imports
no other backend.
"""
