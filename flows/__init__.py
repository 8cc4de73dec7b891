"""The flows shipped with surveybot (installed as bot.shipped_flows)."""
