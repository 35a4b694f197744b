"""What every package of Vraagbaak shares and none owns (imports nothing of ours)."""
