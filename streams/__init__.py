"""The Faust application: app factory, topics from the registry, worker resources, runner."""
