bucket = "sfpipe-prod-tfstate"
