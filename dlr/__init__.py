"""The `dlr` verbs (`verbs.py`: one library function each) and the command line (`cli.py`)."""
