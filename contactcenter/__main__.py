from contactcenter.host.cli import main

main()
