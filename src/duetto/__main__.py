from duetto.cli import entry

entry()
