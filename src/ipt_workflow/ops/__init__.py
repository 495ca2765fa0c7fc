"""Operations: structured logs, metrics, rate limits and supervision of runners."""
