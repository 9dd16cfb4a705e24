"""Small Flask apps the project's own tests run against."""
