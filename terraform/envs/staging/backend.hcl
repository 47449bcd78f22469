bucket = "sfpipe-staging-tfstate"
