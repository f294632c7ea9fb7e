// A run whose process died (killed, crashed) is closed by a later one: its figures come from its
// own events. The same SQL in both databases.
export const DIED_RUN_SET = `outcome = 'died', stop_reason = 'no clean exit: killed or crashed', exit_code = NULL,
  ended_at = COALESCE((SELECT MAX(at) FROM events WHERE run_id = runs.id), started_at),
  items_done = (SELECT COUNT(*) FROM events WHERE run_id = runs.id AND to_state = 'done'),
  items_failed = (SELECT COUNT(*) FROM events WHERE run_id = runs.id AND to_state = 'failed'),
  credits = (SELECT COALESCE(SUM(i.credits), 0) FROM events e JOIN items i ON i.id = e.item_id
             WHERE e.run_id = runs.id AND e.to_state = 'downloading' AND e.from_state IN ('running', 'submitting'))`;
