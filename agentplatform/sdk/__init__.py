"""The agent SDK. Importable without Django configured."""
