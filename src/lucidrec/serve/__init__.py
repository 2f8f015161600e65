"""HTTP serving: the recommender API and web explorer (``lucidrec serve``) and the OpenAI-compatible
chat-completions API of a local language model (``lucidrec lm serve``), both on FastAPI + uvicorn."""
