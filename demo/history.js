// Undo / redo of prompts: a list of states, each {prompts, result, pick}; results are kept so
// that undo and redo show the earlier masks at once.
export function createHistory() {
  let states, pos;
  const empty = () => ({ prompts: [], result: null, pick: 0 });
  const h = {
    reset() {
      states = [empty()];
      pos = 0;
    },
    current: () => states[pos],
    previous: () => (pos > 0 ? states[pos - 1] : null),
    push(prompts) {
      states.length = pos + 1;
      states.push({ prompts, result: null, pick: 0 });
      pos++;
      return states[pos];
    },
    canUndo: () => pos > 0,
    canRedo: () => pos < states.length - 1,
    undo() {
      if (pos === 0) return false;
      pos--;
      return true;
    },
    redo() {
      if (pos >= states.length - 1) return false;
      pos++;
      return true;
    },
  };
  h.reset();
  return h;
}
