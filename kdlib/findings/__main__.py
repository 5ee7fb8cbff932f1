from kdlib.findings.cli import main

main()
