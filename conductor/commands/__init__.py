"""One module per `conductor` command (or pair of commands); imported when it runs."""
