"""Writing what was computed: result folders, reports, figures."""
