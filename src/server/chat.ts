/**
 * The chat template for models that bring none (llama2.c checkpoints and
 * GGUF files without a usable template). Plain text, one turn per line,
 * so any base model continues it sensibly:
 *
 *   System: You are terse.
 *   User: Tell me a story.
 *   Assistant: Once upon a time…
 *   User: Shorter.
 *   Assistant:
 *
 * "developer" (OpenAI's newer name for system) renders as "System". The
 * reply is whatever follows the final "Assistant:"; generation stops where
 * the model starts writing the next turn itself (CHAT_STOP).
 */
import type { ChatMessage } from "./params.ts";

const LABEL: Record<ChatMessage["role"], string> = {
  system: "System",
  developer: "System",
  user: "User",
  assistant: "Assistant",
};

/** Stop strings added to every chat request: the next turn's labels. */
export const CHAT_STOP = ["\nUser:", "\nSystem:"];

export function renderChat(messages: readonly ChatMessage[]): string {
  const turns = messages.map((m) => `${LABEL[m.role]}: ${m.content.trim()}`);
  return [...turns, "Assistant:"].join("\n");
}
