// The album page in a real headless Chromium, against a running album service:
//
//   node serving/web/tests/album.spec.mjs BASE_URL PHOTO_1 PHOTO_2 PHOTO_3
//
// (serving/tests/browser.rs starts the service and runs this; `cargo test -p album-serving
// --test browser`.) The story: sign in, upload three photos, see them in the timeline under
// their days, open People, rename a person, merge two people and hide one, search by name
// and by category, step through photos in the viewer by keyboard, move a face to a new
// person from the viewer's details, move a photo to the trash
// and restore it, make a video of the three photos and see it play, select a range with
// shift-click and add it to an album, then trash it; last, the same album on a phone.
// The three photos should show one person (a person needs three faces), so People has one,
// and carry EXIF dates: PHOTO_2 taken 2021-08-15, PHOTO_1 and PHOTO_3 on 2019-05-04 (PHOTO_3
// later that day), so that the timeline reads PHOTO_2, PHOTO_3, PHOTO_1 under two headings;
// PHOTO_1 has a GPS position in Paris (48.8566 N, 2.3522 E), a marker on the map.
//
// Exits 0 when every step passed; otherwise prints the failed step and why, saves a
// screenshot (in $ALBUM_BROWSER_ARTIFACTS, else a new temp folder) and exits 1.
// $CHROMIUM overrides the browser (default /usr/bin/chromium, from scripts/setup-browser.sh).

import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { chromium } from 'playwright-core';

const [base, ...photos] = process.argv.slice(2);
if (!base || photos.length !== 3) {
  console.error('usage: node album.spec.mjs BASE_URL PHOTO_1 PHOTO_2 PHOTO_3');
  process.exit(2);
}
const artifacts = process.env.ALBUM_BROWSER_ARTIFACTS || mkdtempSync(join(tmpdir(), 'album-browser-'));
mkdirSync(artifacts, { recursive: true });
// A picture of each view as the run passes it; ALBUM_SCREENSHOTS=$PWD/docs/screenshots
// (an absolute path: node runs in serving/web) refreshes the README's.
const screenshots = process.env.ALBUM_SCREENSHOTS || artifacts;
mkdirSync(screenshots, { recursive: true });
const snap = (which, name) => which.screenshot({ path: join(screenshots, `${name}.png`) });

// Face detection and clustering run in the background, on 2 CPU cores in CI.
const PEOPLE_TIMEOUT_MS = 90_000;
const STEP_TIMEOUT_MS = 15_000;
// The montage renders in the background too, after the face jobs.
const MONTAGE_TIMEOUT_MS = 90_000;
const WHOLE_RUN_MS = 330_000;

const started = Date.now();
const log = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${text}`);
const problems = []; // page errors and CSP violations seen along the way

let browser;
let page;
let step = 'starting the browser';

// A hard stop, so a hung browser can never hang the cargo test.
const watchdog = setTimeout(() => fail(new Error(`the whole run took over ${WHOLE_RUN_MS / 1000} s`)), WHOLE_RUN_MS);

async function fail(error) {
  clearTimeout(watchdog);
  console.error(`\nFAILED while ${step}: ${error.message}`);
  if (page) {
    const shot = join(artifacts, 'failure.png');
    try {
      await page.screenshot({ path: shot, fullPage: true, timeout: 5000 });
      console.error(`screenshot: ${shot}`);
    } catch (e) {
      console.error(`(no screenshot: ${e.message})`);
    }
    try {
      const message = await page.locator('[data-testid=message]').textContent({ timeout: 1000 });
      if (message) console.error(`the page's message line: ${message}`);
      const jobs = await page.locator('[data-testid=jobs]').textContent({ timeout: 1000 });
      if (jobs) console.error(`the page's jobs line: ${jobs}`);
    } catch {
      // the page is gone; the error above says why
    }
  }
  for (const problem of problems) console.error(`seen in the page: ${problem}`);
  await browser?.close().catch(() => {});
  process.exit(1);
}

const tiles = () => page.locator('[data-testid=photo-tile]');

// Waits until the grid shows exactly `count` tiles whose thumbnails really decoded.
async function gridShows(count) {
  await page.waitForFunction((n) => {
    const images = [...document.querySelectorAll('[data-testid=photo-tile] img')];
    return images.length === n && images.every((img) => img.complete && img.naturalWidth > 0);
  }, count, { timeout: STEP_TIMEOUT_MS });
}

// Waits for `locator`, but gives up at once if the page shows an error on its message line
// (a failed API call), rather than waiting out the whole timeout.
async function appears(locator, timeout = STEP_TIMEOUT_MS) {
  const error = page.locator('[data-testid=message][data-kind=error]:not([hidden])');
  const shown = await Promise.race([
    locator.waitFor({ timeout }).then(() => 'found'),
    error.waitFor({ timeout: timeout + 1000 }).then(() => 'error'),
  ]);
  if (shown === 'error') throw new Error(`the page says: ${await error.textContent()}`);
}

async function run() {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'], timeout: 30_000 });
  page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    // The page's own 4xx answers are logged by the browser too; CSP violations are not fine.
    if (/Content Security Policy/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
  });

  step = 'opening the page';
  await page.goto(base);
  await page.getByTestId('auth-form').waitFor();

  step = 'signing up through the form';
  const username = `tester-${Date.now()}`;
  const password = 'correct horse battery';
  await page.getByTestId('auth-username').fill(username);
  await page.getByTestId('auth-password').fill(password);
  await page.getByTestId('sign-up').click();
  await page.getByTestId('username').filter({ hasText: username }).waitFor();

  step = 'signing out';
  await page.getByTestId('sign-out').click();
  await page.getByTestId('auth-form').waitFor();

  step = 'signing in through the form';
  await page.getByTestId('auth-username').fill(username);
  await page.getByTestId('auth-password').fill(password);
  await page.getByTestId('sign-in').click();
  await page.getByTestId('username').filter({ hasText: username }).waitFor();
  await page.getByTestId('jobs').waitFor(); // the background-jobs line
  log(`signed in as ${username}`);

  step = 'uploading three photos (and one file that is not a photo)';
  await page.getByTestId('file-input').setInputFiles([
    // Playwright takes paths or buffers, not both, so the photos go in as buffers too.
    ...photos.map((path) => ({ name: basename(path), mimeType: 'image/jpeg', buffer: readFileSync(path) })),
    { name: 'notes.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('not a photo at all\n') },
  ]);
  const items = page.getByTestId('upload-item');
  // The server's memory budget is held full (by the Rust side of this test) until the
  // page shows the first upload answered "busy"; the page then retries on its own.
  if (process.env.ALBUM_BUSY_SEEN) {
    await items.first().getByTestId('upload-status').filter({ hasText: 'busy' }).waitFor();
    log(`first upload: "${await items.first().getByTestId('upload-status').textContent()}"`);
    writeFileSync(process.env.ALBUM_BUSY_SEEN, 'seen\n');
  }
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('[data-testid=upload-item]')];
    return rows.length === 4 && rows.every((r) => ['stored', 'duplicate', 'failed'].includes(r.dataset.state));
  }, null, { timeout: 60_000 });
  const states = await items.evaluateAll((rows) => rows.map((r) => r.dataset.state));
  if (states.join() !== 'stored,stored,stored,failed') throw new Error(`upload states: ${states.join()}`);
  const refused = await items.nth(3).getByTestId('upload-status').textContent();
  // The server's own reason, not a generic one from the page.
  if (!refused || /uploading|interrupted|answered/.test(refused)) {
    throw new Error(`the refused file shows no server message: ${JSON.stringify(refused)}`);
  }
  const bars = await items.evaluateAll((rows) => rows.map((r) => r.querySelector('progress')?.value));
  if (bars.slice(0, 3).some((v) => v !== 100)) throw new Error(`progress bars: ${bars.join()}`);
  // a refused file shows no (full) progress bar, and one line sums the batch up
  if (bars[3] !== undefined) throw new Error(`the refused file still has a progress bar: ${bars[3]}`);
  const summary = await page.getByTestId('upload-summary').textContent();
  if (summary !== '4 files: 3 stored, 1 refused') throw new Error(`upload summary: ${summary}`);
  log(`uploads: ${states.join(', ')}; refused with "${refused}"`);

  step = 'seeing the three photos in the grid';
  await gridShows(3);
  log('the grid shows 3 thumbnails');

  step = 'reading the timeline: newest taken first, a heading where each day starts';
  const [first, second, third] = photos.map((path) => basename(path));
  const timeline = ['2021-08-15', second, '2019-05-04', third, first];
  const shownOrder = await page.getByTestId('photo-grid').evaluate((grid) => [...grid.children]
    .map((item) => item.dataset.day ?? item.querySelector('[data-testid=photo-tile]')?.title));
  if (shownOrder.join() !== timeline.join()) {
    throw new Error(`the timeline reads ${JSON.stringify(shownOrder)}, not ${JSON.stringify(timeline)}`);
  }
  log(`timeline: ${shownOrder.join(' · ')}`);
  await snap(page, 'timeline');

  step = 'jumping to May 2019 with the scrubber, then back to the newest';
  const scrubMonths = await page.getByTestId('scrubber-month').evaluateAll((all) => all.map((b) => b.dataset.month));
  if (scrubMonths.join() !== '2021-08,2019-05') throw new Error(`the scrubber offers ${scrubMonths}`);
  await page.locator('[data-testid=scrubber-month][data-month="2019-05"]').click();
  await page.getByTestId('scrubber-newest').waitFor();
  const fromMay = await page.getByTestId('photo-grid').evaluate((grid) => [...grid.children]
    .map((item) => item.dataset.day ?? item.querySelector('[data-testid=photo-tile]')?.title));
  if (fromMay.join() !== ['2019-05-04', third, first].join()) throw new Error(`from May 2019 the grid reads ${fromMay}`);
  await page.getByTestId('scrubber-newest').click();
  await gridShows(3);
  log(`scrubber: ${scrubMonths.join(', ')}; May 2019 shows ${fromMay.join(' · ')}; Newest shows all 3 again`);

  step = `opening People and waiting (up to ${PEOPLE_TIMEOUT_MS / 1000} s) for a person`;
  await page.getByTestId('nav-people').click();
  const card = page.getByTestId('person-card').first();
  await appears(card, PEOPLE_TIMEOUT_MS);
  const personId = await card.getAttribute('data-person-id');
  log(`People shows ${await page.getByTestId('person-card').count()} person(s)`);

  step = `renaming person ${personId}`;
  const newName = 'Ada Lovelace';
  const named = page.locator(`[data-testid=person-card][data-person-id="${personId}"]`);
  await named.getByTestId('person-name-input').fill(newName);
  await named.getByTestId('person-rename').click();
  await named.getByTestId('person-card-name').filter({ hasText: newName }).waitFor();
  const serverName = await page.evaluate(async (id) => {
    const people = await (await fetch('/api/people')).json();
    return people.find((p) => String(p.id) === id)?.name;
  }, personId);
  if (serverName !== newName) throw new Error(`the server has the name ${JSON.stringify(serverName)}`);
  log(`person ${personId} is now "${newName}", on the page and on the server`);

  step = 'splitting two faces off into people of their own (through the API)';
  const made = await page.evaluate(async (id) => {
    const faces = await (await fetch(`/api/people/${id}/faces`)).json();
    const people = [];
    for (const face of faces.slice(0, 2)) {
      const answer = await fetch(`/api/people/${id}/split`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ face_ids: [face.id] }),
      });
      people.push((await answer.json()).id);
    }
    return people;
  }, personId);
  if (made.length !== 2 || made.some((id) => !id)) throw new Error(`split made ${JSON.stringify(made)}`);
  const cards = page.getByTestId('person-card');
  const before = await cards.count();
  const cardsAre = (n) => page.waitForFunction((count) =>
    document.querySelectorAll('[data-testid=person-card]').length === count, n);
  await page.reload();
  await cardsAre(before + 2);
  const cardOf = (id) => page.locator(`[data-testid=person-card][data-person-id="${id}"]`);

  step = `"Same person?" on ${newName}'s page offers the two split off`;
  await page.goto(`${base}/#person/${personId}`);
  const offers = page.getByTestId('same-person-card');
  await offers.nth(1).waitFor();
  const offered = await offers.evaluateAll((all) => all.map((c) => c.querySelector('a').getAttribute('href')));
  if (offered.sort().join() !== made.map((id) => `#person/${id}`).sort().join()) {
    throw new Error(`"Same person?" offers ${offered}`);
  }
  await snap(page, 'same-person');
  await offers.first().getByTestId('same-person-no').click();
  if (await offers.count() !== 1) throw new Error('"No" did not take the suggestion away');
  log(`"Same person?" on ${newName}'s page offered ${offered.join(' and ')}; "No" took one away`);
  await page.getByTestId('nav-people').click();
  await cardsAre(before + 2);

  step = `merging person ${made[0]} into ${newName} in the page`;
  page.once('dialog', (question) => question.accept());
  await cardOf(made[0]).getByTestId('person-merge-into').selectOption({ label: newName });
  await cardOf(made[0]).getByTestId('person-merge').click();
  await cardsAre(before + 1);
  const adaPhotos = await cardOf(personId).locator('.card-detail').textContent();
  if (!adaPhotos.startsWith('2 photos')) throw new Error(`after the merge ${newName} shows "${adaPhotos}"`);

  step = `hiding person ${made[1]}, then showing the hidden`;
  await cardOf(made[1]).getByTestId('person-hide').click();
  await cardsAre(before);
  const hiddenOnServer = await page.evaluate(async () =>
    (await (await fetch('/api/people?hidden=true')).json()).filter((p) => p.hidden).map((p) => p.id));
  if (hiddenOnServer.join() !== String(made[1])) throw new Error(`hidden on the server: ${hiddenOnServer}`);
  await page.getByTestId('people-show-hidden').check();
  await page.locator(`[data-testid=person-card][data-person-id="${made[1]}"][data-hidden]`).waitFor();
  if (await cards.count() !== before + 1) throw new Error(`with the hidden shown: ${await cards.count()} cards`);
  await snap(page, 'people');
  log(`People: ${made[0]} merged into ${newName} (now ${adaPhotos}), ${made[1]} hidden and shown on request`);

  step = 'searching by a person\'s name and by a category';
  const search = async (text) => {
    await page.getByTestId('search-input').fill(text);
    await page.getByTestId('search-input').press('Enter');
    await page.locator('h2', { hasText: `Search: ${text}` }).waitFor();
  };
  const resultTiles = (kind) => page.locator(`[data-testid=search-result][data-kind=${kind}] [data-testid=photo-tile]`);
  await search('lovelace');
  await resultTiles('person').nth(1).waitFor();
  if (await resultTiles('person').count() !== 2) throw new Error(`"lovelace" finds ${await resultTiles('person').count()} photos`);
  const category = await page.evaluate(async () => {
    for (let i = 0; i < 120; i += 1) {
      const categories = await (await fetch('/api/categories')).json();
      if (categories.length) return categories[0];
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    return null;
  });
  if (!category) throw new Error('no photo was classified within a minute');
  await search(category.name);
  await resultTiles('category').first().waitFor();
  if (await resultTiles('category').count() !== category.photos) {
    throw new Error(`"${category.name}" finds ${await resultTiles('category').count()} of its ${category.photos} photos`);
  }
  await snap(page, 'search');
  log(`search: "lovelace" finds her 2 photos, "${category.name}" its ${category.photos}`);

  step = 'seeing the Paris photo as a marker on the map of Places';
  await page.getByTestId('nav-places').click();
  const marker = page.getByTestId('map-marker');
  await appears(marker.first());
  const spot = await marker.evaluateAll((all) => all.map((m) => [Number(m.getAttribute('cx')), Number(m.getAttribute('cy'))]));
  // The map is in degrees: x = longitude + 180, y = 90 - latitude.
  if (spot.length !== 1 || Math.abs(spot[0][0] - 182.3522) > 0.01 || Math.abs(spot[0][1] - 41.1434) > 0.01) {
    throw new Error(`the map's markers stand at ${JSON.stringify(spot)}, not at Paris (182.3522, 41.1434)`);
  }
  const land = await page.locator('[data-testid=places-map] path.land').getAttribute('d');
  if (!land || land.length < 10_000) throw new Error(`the land is ${land?.length ?? 0} characters of path`);
  const placeCard = await page.getByTestId('place-card').first().textContent();
  if (!placeCard.includes('France')) throw new Error(`the place card reads "${placeCard}"`);
  await snap(page, 'places');
  log(`Places: one marker at ${spot[0].join(', ')} on ${land.length} characters of land; the card reads "${placeCard}"`);

  step = 'opening a photo and moving it to the trash';
  await page.getByTestId('nav-photos').click();
  await gridShows(3);
  const photoId = await tiles().first().getAttribute('data-photo-id');
  await tiles().first().click();
  const dialog = page.getByTestId('photo-dialog');
  await dialog.waitFor();
  await page.waitForFunction(() => {
    const img = document.querySelector('[data-testid=photo-preview]');
    return img.complete && img.naturalWidth > 0;
  });
  // A small original is shown at its own size, not blown up to fill the viewer.
  const shownAt = await page.evaluate(() => {
    const img = document.querySelector('[data-testid=photo-preview]');
    return { drawn: img.getBoundingClientRect().width, natural: img.naturalWidth };
  });
  if (shownAt.drawn > shownAt.natural + 1) throw new Error(`the preview is enlarged: ${JSON.stringify(shownAt)}`);
  // The Back button closes the viewer (and leaves the page where it was).
  await page.goBack();
  await dialog.waitFor({ state: 'hidden' });
  if (!page.url().endsWith('#photos')) throw new Error(`Back left the page at ${page.url()}`);
  await tiles().first().click();
  await dialog.waitFor();
  log(`viewer: preview drawn ${shownAt.drawn} px wide for a ${shownAt.natural} px photo; Back closes it`);
  // Next and previous follow the grid: the arrow keys, and the buttons, which are off at the ends.
  const viewerShows = (name) => page.getByTestId('photo-name').filter({ hasText: name }).waitFor();
  const stepsOff = () => page.evaluate(() => ['previous', 'next']
    .filter((which) => document.querySelector(`[data-testid=photo-${which}]`).disabled).join());
  // Who is in each photo: the details name the people found in it (not the hidden one).
  const peopleShown = () => page.evaluate(() =>
    [...document.querySelectorAll('[data-testid=photo-person]')].map((a) => a.textContent));
  const inPhotos = [];
  await viewerShows(second);
  inPhotos.push(...await peopleShown());
  if (await stepsOff() !== 'previous') throw new Error(`at the first photo, off: ${await stepsOff()}`);
  await page.keyboard.press('ArrowRight');
  await viewerShows(third);
  inPhotos.push(...await peopleShown());
  await page.keyboard.press('ArrowRight');
  await viewerShows(first);
  inPhotos.push(...await peopleShown());
  if (inPhotos.filter((name) => name === newName).length !== 2) {
    throw new Error(`the viewer names ${JSON.stringify(inPhotos)}, ${newName} not in 2 photos`);
  }
  if (await stepsOff() !== 'next') throw new Error(`at the last photo, off: ${await stepsOff()}`);
  await page.keyboard.press('ArrowRight'); // past the end: stays
  await page.keyboard.press('ArrowLeft');
  await viewerShows(third);
  await page.getByTestId('photo-previous').click();
  await viewerShows(second);
  await snap(page, 'viewer');
  log('viewer: the arrow keys and the buttons step through the timeline\'s order');

  step = `moving ${newName}'s face in one photo to a new person, from the viewer's details`;
  let stepped = 0;
  while (!(await peopleShown()).includes(newName) && stepped < 2) {
    const before = await page.getByTestId('photo-name').textContent();
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction((name) =>
      document.querySelector('[data-testid=photo-name]').textContent !== name, before);
    stepped += 1;
  }
  const entry = page.getByTestId('photo-person-entry').filter({ hasText: newName });
  await entry.getByTestId('photo-person-move').click();
  await entry.getByTestId('photo-person-move-to').selectOption('new');
  await page.waitForFunction((name) => {
    const shownNames = [...document.querySelectorAll('[data-testid=photo-person]')].map((a) => a.textContent);
    return shownNames.length > 0 && !shownNames.includes(name);
  }, newName);
  const movedTo = await peopleShown();
  const herPhotos = await page.evaluate(async (id) =>
    (await (await fetch(`/api/people/${id}`)).json()).photos, personId);
  if (herPhotos !== 1) throw new Error(`after the move ${newName} is in ${herPhotos} photos`);
  log(`viewer: "Not them?" moved ${newName}'s face to ${movedTo.join(', ')}; she is in 1 photo now`);
  const order = [second, third, first]; // the timeline's, which the viewer steps through
  for (; stepped > 0; stepped -= 1) {
    await page.keyboard.press('ArrowLeft');
    await viewerShows(order[stepped - 1]);
  }
  await page.getByTestId('photo-trash').click();
  await dialog.waitFor({ state: 'hidden' });
  await gridShows(2);
  if (await page.locator(`[data-testid=photo-tile][data-photo-id="${photoId}"]`).count()) {
    throw new Error(`photo ${photoId} is still in the grid`);
  }
  log(`photo ${photoId} moved to the trash; the grid shows 2`);

  step = 'restoring the photo from the trash';
  await page.getByTestId('nav-trash').click();
  const trashed = page.locator(`[data-testid=trash-tile][data-photo-id="${photoId}"]`);
  await trashed.getByTestId('trash-restore').click();
  await page.getByTestId('grid-empty').waitFor(); // the trash is empty again
  await page.getByTestId('nav-photos').click();
  await gridShows(3);
  await page.locator(`[data-testid=photo-tile][data-photo-id="${photoId}"]`).waitFor();
  log(`photo ${photoId} restored; the grid shows 3 again`);

  step = `making a video of the three photos (up to ${MONTAGE_TIMEOUT_MS / 1000} s) and playing it`;
  await page.getByTestId('make-montage').click();
  await page.getByTestId('montage-status').waitFor();
  await appears(page.getByTestId('montage-play'), MONTAGE_TIMEOUT_MS);
  log(`montage: ${await page.getByTestId('montage-status').textContent()}`);
  await page.getByTestId('montage-play').click();
  await dialog.waitFor();
  await page.getByTestId('photo-video').waitFor();
  const played = await page.evaluate(async () => {
    const video = document.querySelector('[data-testid=photo-video]');
    video.muted = true; // no autoplay policy stands in the way of a muted video
    await video.play();
    const start = performance.now();
    while (video.currentTime < 0.5 && performance.now() - start < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { time: video.currentTime, width: video.videoWidth, height: video.videoHeight,
      duration: video.duration, error: video.error?.message ?? null };
  });
  if (played.time < 0.5 || played.width !== 1280 || played.height !== 720) {
    throw new Error(`the video did not play: ${JSON.stringify(played)}`);
  }
  log(`the video plays: ${JSON.stringify(played)}`);

  step = 'selecting a range with shift-click, adding it to an album, making a GIF of it, then moving it to the trash';
  const albumId = await page.evaluate(async () => (await (await fetch('/api/albums', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Trip' }),
  })).json()).id);
  await page.getByTestId('photo-close').click(); // the video's viewer
  await dialog.waitFor({ state: 'hidden' });
  await page.getByTestId('nav-albums').click();
  await page.getByTestId('nav-photos').click();
  await gridShows(4); // the three photos and the video
  // by name: the GIF made below comes first in the timeline and moves the others along
  const tileNamed = (name) => page.locator(`[data-testid=photo-tile][title="${name}"]`);
  const selectRange = async () => {
    await tileNamed(second).click({ modifiers: ['Shift'] });
    await tileNamed(third).click({ modifiers: ['Shift'] });
    const count = await page.getByTestId('selection-count').textContent();
    if (count !== '2 photos selected') throw new Error(`the bar says "${count}"`);
    return tiles().evaluateAll((all) => all.filter((t) => t.hasAttribute('data-selected')).map((t) => t.title));
  };
  const picked = await selectRange();
  await snap(page, 'selection');
  if (picked.join() !== [second, third].join()) throw new Error(`selected ${picked}`);
  await page.getByTestId('selection-album').selectOption({ label: 'Trip' });
  await page.getByTestId('selection-add').click();
  await page.getByTestId('message').filter({ hasText: 'Added 2 photos to Trip.' }).waitFor();
  const inAlbum = await page.evaluate(async (id) =>
    (await (await fetch(`/api/photos?album=${id}`)).json()).photos.map((p) => p.name).sort(), albumId);
  if (inAlbum.join() !== [...picked].sort().join()) throw new Error(`the album holds ${inAlbum}`);
  await selectRange();
  await page.getByTestId('selection-gif').click();
  await page.getByTestId('message').filter({ hasText: 'Made a GIF of 2 photos' }).waitFor();
  await gridShows(5);
  const gif = await page.evaluate(async () =>
    (await (await fetch('/api/photos')).json()).photos.find((p) => p.kind === 'gif'));
  if (!gif) throw new Error('no GIF in the listing after "Make a GIF"');
  await selectRange();
  await page.getByTestId('selection-trash').click();
  await page.getByTestId('message').filter({ hasText: 'Moved 2 photos to the trash.' }).waitFor();
  await gridShows(3);
  log(`selection: ${picked.join(' and ')} added to Trip (album ${albumId}), made into ${gif.name}, ` +
    'and moved to the trash');

  step = 'on a phone (390 × 844, touch): nothing wider than the screen, the viewer closes by touch and by Back';
  const phone = await (await browser.newContext({
    viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true,
  })).newPage();
  phone.on('pageerror', (error) => problems.push(`uncaught (phone): ${error.message}`));
  await phone.goto(`${base}/#photos`);
  await phone.getByTestId('auth-username').fill(username);
  await phone.getByTestId('auth-password').fill(password);
  await phone.getByTestId('sign-in').tap();
  await phone.locator('[data-testid=photo-tile]').first().waitFor();
  const wide = await phone.evaluate(() => {
    const limit = document.documentElement.clientWidth;
    const over = [...document.querySelectorAll('body *')]
      .filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > limit + 1)
      .map((e) => `${e.tagName.toLowerCase()}${e.dataset.testid ? `[${e.dataset.testid}]` : ''}`);
    return { page: document.documentElement.scrollWidth, limit, over: over.slice(0, 5) };
  });
  if (wide.page > wide.limit || wide.over.length) throw new Error(`wider than the phone: ${JSON.stringify(wide)}`);
  await phone.locator('[data-testid=photo-tile]').first().tap();
  const phoneDialog = phone.getByTestId('photo-dialog');
  await phoneDialog.waitFor();
  const close = await phone.getByTestId('photo-close').boundingBox();
  if (!close || close.x < 0 || close.x + close.width > 390) {
    throw new Error(`the viewer's Close is off screen: ${JSON.stringify(close)}`);
  }
  // A swipe to the left over the photo shows the next one.
  const phoneNames = await phone.locator('[data-testid=photo-tile]').evaluateAll((all) => all.map((t) => t.title));
  await phone.evaluate(() => {
    const img = document.querySelector('[data-testid=photo-preview]');
    const touch = (x) => new Touch({ identifier: 1, target: img, clientX: x, clientY: 200 });
    img.dispatchEvent(new TouchEvent('touchstart', { changedTouches: [touch(300)], bubbles: true }));
    img.dispatchEvent(new TouchEvent('touchend', { changedTouches: [touch(100)], bubbles: true }));
  });
  await phone.getByTestId('photo-name').filter({ hasText: phoneNames[1] }).waitFor();
  await snap(phone, 'phone-viewer');
  await phone.getByTestId('photo-close').tap();
  await phoneDialog.waitFor({ state: 'hidden' });
  await phone.locator('[data-testid=photo-tile]').first().tap();
  await phoneDialog.waitFor();
  await phone.goBack();
  await phoneDialog.waitFor({ state: 'hidden' });
  await snap(phone, 'phone-timeline');
  log(`phone: page ${wide.page} px wide on a ${wide.limit} px screen; Close tapped and Back both close the viewer`);

  if (problems.length) throw new Error(`the page reported ${problems.length} problem(s)`);
  clearTimeout(watchdog);
  await browser.close();
  log('all steps passed');
}

run().catch(fail);
