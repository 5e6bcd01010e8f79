from jackalope.cli import main

main()
