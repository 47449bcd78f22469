bucket = "sfpipe-dev-tfstate"
