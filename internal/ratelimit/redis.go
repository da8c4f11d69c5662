package ratelimit

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/go-chi/httprate"
	"github.com/redis/go-redis/v9"
)

// redisCounter keeps httprate's per-window counts in Redis, one key per
// (limit key, window) that expires after two windows, so that every
// instance sees the same counts.
type redisCounter struct {
	client *redis.Client
	window time.Duration
}

var _ httprate.LimitCounter = (*redisCounter)(nil)

func newRedisCounter(client *redis.Client) *redisCounter {
	return &redisCounter{client: client}
}

// redisTimeout bounds each Redis call: a slow Redis must not slow deletes.
const redisTimeout = 250 * time.Millisecond

func (c *redisCounter) Config(_ int, window time.Duration) { c.window = window }

func (c *redisCounter) Increment(key string, window time.Time) error {
	return c.IncrementBy(key, window, 1)
}

func (c *redisCounter) IncrementBy(key string, window time.Time, amount int) error {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	k := redisKey(key, window)
	pipe := c.client.TxPipeline()
	pipe.IncrBy(ctx, k, int64(amount))
	pipe.Expire(ctx, k, 2*c.window)
	_, err := pipe.Exec(ctx)
	return err
}

func (c *redisCounter) Get(key string, current, previous time.Time) (int, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	values, err := c.client.MGet(ctx, redisKey(key, current), redisKey(key, previous)).Result()
	if err != nil {
		return 0, 0, err
	}
	counts := [2]int{}
	for i, v := range values {
		if v == nil {
			continue // no requests in that window
		}
		s, ok := v.(string)
		if !ok {
			return 0, 0, errors.New("ratelimit: unexpected redis value")
		}
		if counts[i], err = strconv.Atoi(s); err != nil {
			return 0, 0, err
		}
	}
	return counts[0], counts[1], nil
}

func redisKey(key string, window time.Time) string {
	return "uploads:ratelimit:" + strconv.FormatUint(httprate.LimitCounterKey(key, window), 36)
}
