"""DynAIRx clinical knowledge base: vocabularies, safety rules and clinical scores (pure domain logic)."""
