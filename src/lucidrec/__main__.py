from lucidrec.cli import main

main()
