from unveil.cli.main import entry

entry()
