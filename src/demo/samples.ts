/**
 * Sentences written for this demo (not taken from any data set): a few examples to click, and a small labelled
 * sample for the dataset mode. Labels follow SST-2's convention: 0 = negative, 1 = positive.
 */

export const EXAMPLES: readonly string[] = [
  'A warm, funny film that never wastes a minute of its running time.',
  'The plot is a mess and the jokes land with a dull thud.',
  'Not the best thing I have seen this year, but far from the worst.',
  'I expected to be bored, and yet I was smiling all the way through.',
  'the quick brown fox jumps over the dog.',
];

export interface LabelledSentence {
  text: string;
  label: 0 | 1;
}

export const SAMPLE_SENTENCES: readonly LabelledSentence[] = [
  { text: 'A generous, big-hearted comedy with a cast that clearly enjoys itself.', label: 1 },
  { text: 'Two hours of my life I will not get back.', label: 0 },
  { text: 'The score swells at every turn, and for once it has earned it.', label: 1 },
  { text: 'Flat characters wander through a story that goes nowhere.', label: 0 },
  { text: 'Smart, tender and quietly devastating.', label: 1 },
  { text: 'The dialogue sounds like it was written by a committee of robots.', label: 0 },
  { text: 'I laughed more than I have at any film in years.', label: 1 },
  { text: 'Even the explosions are boring.', label: 0 },
  { text: 'A small story told with great care and a lot of charm.', label: 1 },
  { text: 'It drags on long after it has run out of ideas.', label: 0 },
  { text: 'The lead gives a fearless performance that holds the whole thing together.', label: 1 },
  { text: 'A sequel nobody asked for, made with no affection at all.', label: 0 },
  { text: 'Beautifully shot and surprisingly moving.', label: 1 },
  { text: 'The twist is obvious from the first scene.', label: 0 },
  { text: 'A delight from the opening credits to the last frame.', label: 1 },
  { text: 'Loud, messy and strangely joyless.', label: 0 },
  { text: 'Its kindness sneaks up on you.', label: 1 },
  { text: 'I checked my watch more often than I watched the screen.', label: 0 },
  { text: 'A clever script that trusts its audience.', label: 1 },
  { text: 'Every scene goes on a little too long, and there are too many scenes.', label: 0 },
  { text: 'The kind of film you want to tell your friends about the moment it ends.', label: 1 },
  { text: 'A tired, by-the-numbers thriller with no thrills.', label: 0 },
  { text: 'Sharp writing and a wonderful ensemble make it a joy.', label: 1 },
  { text: 'The actors look as lost as the audience.', label: 0 },
  { text: 'Funny, warm and full of small surprises.', label: 1 },
  { text: 'What should have been touching is merely sentimental.', label: 0 },
  { text: 'A rare comedy that is as wise as it is silly.', label: 1 },
  { text: 'The special effects cannot hide how empty it all is.', label: 0 },
  { text: 'I was gripped from start to finish.', label: 1 },
  { text: 'It mistakes noise for energy and cruelty for wit.', label: 0 },
  { text: 'A lovely, unhurried film about friendship.', label: 1 },
  { text: 'Dull, dull, dull.', label: 0 },
  { text: 'The best performance of her career, in a film worthy of it.', label: 1 },
  { text: 'A muddled plot and a soundtrack that never stops shouting.', label: 0 },
  { text: 'Gentle, honest and often very funny.', label: 1 },
  { text: 'By the halfway mark I had stopped caring about anyone on screen.', label: 0 },
  { text: 'Inventive, playful and full of heart.', label: 1 },
  { text: 'A pointless remake that copies the original and improves nothing.', label: 0 },
  { text: 'Not a perfect film, but a brave and memorable one.', label: 1 },
  { text: 'Not funny, not scary and not worth the ticket.', label: 0 },
  { text: 'the fox jumps over the quick brown dog!', label: 1 },
  { text: 'hello world, un cafe.', label: 0 },
];

/** The built-in sample as the dataset mode's rows. */
export function sampleRows(): { text: string; label: number }[] {
  return SAMPLE_SENTENCES.map((s) => ({ text: s.text, label: s.label }));
}
