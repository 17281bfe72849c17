"""What a run tells: the verdict, the summary, the JSON and Markdown reports
and where each check's evidence points."""
