from dicomite.cli.main import main

main()
