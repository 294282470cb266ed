"""The soak: a bounded mixed load for many minutes, sampling memory, fds and threads of every process."""
