"""PolicyLedger's Qt desktop application (built on policyledger_core)."""
