"""What the source systems deliver: their schemas, shared by the pipeline and the simulators."""
