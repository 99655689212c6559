"""Control: the controller port, real-time allocation and (later) horizon scheduling."""
