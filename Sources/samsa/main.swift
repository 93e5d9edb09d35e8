import SamsaTool

SamsaCommand.main()
