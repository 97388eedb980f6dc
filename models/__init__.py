"""The DynAIRx temporal graph risk model: graph building, network, training, evaluation, scoring, explanations.

See ``models/README.md`` for why it is built the way it is. Nothing here runs at import time; torch is imported by
the modules that need it, so that ``import models`` stays cheap.
"""
