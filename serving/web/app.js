// The album page: sign-in, upload, the photo grid and the album's views, over the JSON API
// (serving/openapi.json). One module, no framework, no build step: the server compiles this
// file into its binary. The URL hash names the view (#photos, #album/3, #people, ...), so
// reloads and the back button work without server-side routes.

const $ = (selector, root = document) => root.querySelector(selector);

// ---------------------------------------------------------------------------------------
// Talking to the server
// ---------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The session cookie (HttpOnly, SameSite=Strict) rides along on every same-origin request,
// so the page never sees the token.
async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await errorOf(response.status, await response.text());
  if (response.status === 204) return null;
  return response.json();
}

// The server's errors are {"error": code, "message": text}; show its message, not ours.
function errorOf(status, text) {
  try {
    const body = JSON.parse(text);
    return new ApiError(status, body.error, body.message);
  } catch {
    return new ApiError(status, 'http', `the server answered ${status}`);
  }
}

function showMessage(text, kind = 'error') {
  const box = $('[data-testid=message]');
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = !text;
}

// Runs an action from a click or a form; an expired session sends the user to sign in.
async function attempt(action) {
  try {
    await action();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && error.code === 'unauthorized') {
      signedOut();
    }
    showMessage(error.message);
  }
}

// Small element builder, so views read as structure and text is never parsed as HTML.
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
    else if (key === 'testid') element.dataset.testid = value;
    else element.setAttribute(key, value === true ? '' : value);
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

const thumbnailUrl = (id) => `/api/photos/${id}/thumbnail`;
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
// One way of writing a date and time everywhere on the page; a date that does not parse
// is shown as it came.
function dateTime(value) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

// ---------------------------------------------------------------------------------------
// Signing in and out
// ---------------------------------------------------------------------------------------

let me = null;

function signedIn(user) {
  me = user;
  $('[data-testid=username]').textContent = user.username;
  $('[data-testid=who]').hidden = false;
  $('[data-testid=auth-view]').hidden = true;
  $('[data-testid=app-view]').hidden = false;
  showMessage('');
  pollJobs();
  route();
}

function signedOut() {
  me = null;
  lastDone = null;
  if (dialog.open) dialog.close();
  $('[data-testid=who]').hidden = true;
  $('[data-testid=jobs]').hidden = true;
  $('[data-testid=app-view]').hidden = true;
  $('[data-testid=auth-view]').hidden = false;
  $('[data-testid=view]').replaceChildren();
  $('[data-testid=uploads]').replaceChildren();
  $('[data-testid=upload-summary]')?.remove();
}

$('[data-testid=auth-form]').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.target;
  const credentials = { username: form.username.value.trim(), password: form.password.value };
  const signUp = event.submitter?.value === 'sign-up';
  attempt(async () => {
    if (signUp) await api('POST', '/api/users', credentials);
    const session = await api('POST', '/api/sessions', credentials);
    form.reset();
    signedIn(session.user);
  });
});

$('[data-testid=sign-out]').addEventListener('click', () =>
  attempt(async () => {
    await api('DELETE', '/api/sessions');
    signedOut();
  }),
);

// ---------------------------------------------------------------------------------------
// Uploading: one XMLHttpRequest per file, because fetch() reports no upload progress
// ---------------------------------------------------------------------------------------

const uploadQueue = [];
let uploading = false;
// The files of the current batch, for the "N of M" line: how many, and how each ended.
const batch = { total: 0, stored: 0, duplicate: 0, failed: 0 };

// One line over the rows: "Uploading 3 of 10 · 2 stored", then "10 files: 9 stored, 1 refused".
function showUploadSummary() {
  const list = $('[data-testid=uploads]');
  let line = $('[data-testid=upload-summary]');
  if (!line) {
    line = h('p', { class: 'upload-summary', testid: 'upload-summary', role: 'status' });
    list.before(line);
  }
  const finished = batch.stored + batch.duplicate + batch.failed;
  const parts = [
    batch.stored && `${batch.stored} stored`,
    batch.duplicate && `${batch.duplicate} already there`,
    batch.failed && `${batch.failed} refused`,
  ].filter(Boolean);
  line.textContent = finished < batch.total
    ? `Uploading ${finished + 1} of ${batch.total}` + (parts.length ? ` · ${parts.join(', ')}` : '')
    : `${plural(batch.total, 'file')}: ${parts.join(', ')}`;
  line.dataset.done = String(finished === batch.total);
}

function queueUploads(files) {
  // A new batch replaces the finished rows of the last one; failures stay until then.
  if (!uploading) {
    $('[data-testid=uploads]').replaceChildren();
    Object.assign(batch, { total: 0, stored: 0, duplicate: 0, failed: 0 });
  }
  batch.total += files.length;
  for (const file of files) {
    const progress = h('progress', { max: 100, value: 0, 'aria-label': `Uploading ${file.name}` });
    const status = h('span', { class: 'status', testid: 'upload-status' }, 'waiting');
    const row = h('li', { testid: 'upload-item', 'data-state': 'waiting' },
      h('span', { class: 'name' }, file.name), progress, status);
    $('[data-testid=uploads]').append(row);
    uploadQueue.push({ file, row, progress, status });
  }
  showUploadSummary();
  if (!uploading) drainUploads();
}

// One file at a time: the server checks and fsyncs each photo, and a steady single stream
// gives honest per-file progress.
async function drainUploads() {
  uploading = true;
  pollJobs(); // the header says "Uploading" now, not "All caught up"
  let stored = 0;
  while (uploadQueue.length) {
    if (await uploadOne(uploadQueue.shift())) stored += 1;
  }
  uploading = false;
  // A batch that all went in needs no rows any more (the summary line stays); one with a
  // refused file keeps its rows, so that the reasons can be read, until the next upload.
  if (!batch.failed) {
    setTimeout(() => { if (!uploading) $('[data-testid=uploads]').replaceChildren(); }, 5000);
  }
  if (stored && me) {
    refreshView();
    pollJobs(); // new photos mean new background jobs: poll fast again now, not in 10 s
  }
}

// How many times an upload the server answered "busy" (503) is sent again, each after
// the Retry-After it gave: the server refuses work it has no memory for rather than fail.
const BUSY_RETRIES = 5;

function uploadOne({ file, row, progress, status }, attempt = 0) {
  return new Promise((resolve) => {
    const finish = (state, text, ok) => {
      row.dataset.state = state;
      status.textContent = text;
      // a full bar would say "done" of a file that was refused
      if (ok) progress.value = 100;
      else progress.replaceWith(h('span')); // the grid keeps its columns
      batch[state] += 1;
      showUploadSummary();
      resolve(ok);
    };
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/photos');
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) progress.value = Math.round((100 * event.loaded) / event.total);
    });
    xhr.addEventListener('load', () => {
      if (xhr.status === 200 || xhr.status === 201) {
        const result = JSON.parse(xhr.responseText).results[0];
        if (result.status === 'stored') finish('stored', 'stored', true);
        else if (result.photo.trashed) finish('duplicate', 'already in your trash', false);
        else finish('duplicate', 'already in your album', false);
      } else if (xhr.status === 503 && attempt < BUSY_RETRIES) {
        const seconds = Number(xhr.getResponseHeader('Retry-After')) || 5;
        row.dataset.state = 'waiting';
        status.textContent = `the server is busy; trying again in ${seconds} s`;
        setTimeout(() => resolve(uploadOne({ file, row, progress, status }, attempt + 1)),
          seconds * 1000);
      } else {
        const error = errorOf(xhr.status, xhr.responseText);
        if (xhr.status === 401) signedOut();
        finish('failed', error.message, false);
      }
    });
    xhr.addEventListener('error', () => finish('failed', 'the upload was interrupted', false));
    const form = new FormData();
    form.append('files', file, file.name);
    row.dataset.state = 'uploading';
    status.textContent = 'uploading';
    xhr.send(form);
  });
}

$('[data-testid=file-input]').addEventListener('change', (event) => {
  queueUploads([...event.target.files]);
  event.target.value = ''; // so choosing the same file again fires change again
});

const dropZone = $('[data-testid=drop-zone]');
// dragover must be cancelled, or the browser opens the dropped file instead.
dropZone.addEventListener('dragover', (event) => {
  event.preventDefault();
  dropZone.classList.add('over');
});
dropZone.addEventListener('dragleave', () => dropZone.classList.remove('over'));
dropZone.addEventListener('drop', (event) => {
  event.preventDefault();
  dropZone.classList.remove('over');
  queueUploads([...event.dataTransfer.files]);
});

// ---------------------------------------------------------------------------------------
// Views. Each render takes a ticket; an older render that finishes late sees a newer
// ticket and drops its result, so a slow answer never overwrites a fresher one.
// ---------------------------------------------------------------------------------------

let ticket = 0;
let current = { view: 'photos', id: null };

// Each view is (id from the hash, stale) => Promise; see render().
const views = {
  photos: (_, stale) => photoView('Photos', {}, stale),
  albums: albumsView,
  album: albumView,
  categories: categoriesView,
  category: (name, stale) => photoView(`Category: ${name}`, { category: name }, stale),
  people: peopleView,
  person: personView,
  places: placesView,
  place: placeView,
  favourites: (_, stale) => photoView('Favourites', { favourite: true }, stale),
  search: searchView,
  trash: trashView,
};

function route() {
  const [view, id] = location.hash.replace(/^#/, '').split('/');
  current = { view: views[view] ? view : 'photos', id: id ? decodeURIComponent(id) : null };
  // A single item's view lights up its section's link (an album → Albums).
  const section = { album: 'albums', category: 'categories', person: 'people', place: 'places' }[current.view] ??
    current.view;
  clearSelection(); // a selection belongs to the view it was made in
  shownGrid = null; // and the viewer's next page to the grid drawn next
  scrubbedTo = null;
  for (const link of document.querySelectorAll('nav a')) {
    if (link.getAttribute('href') === `#${section}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  refreshView();
}

function refreshView() {
  if (!me) return;
  const mine = ++ticket;
  const stale = () => mine !== ticket;
  attempt(() => views[current.view](current.id, stale));
}

// Renders into the view only if no newer render has started since.
function render(stale, ...children) {
  if (stale()) return;
  $('[data-testid=view]').replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

window.addEventListener('hashchange', () => {
  if (!me) return;
  // A link followed from the viewer (a person in the photo) shows that view, not the photo.
  if (dialog.open) dialog.close();
  showMessage('');
  route();
});

// The day a photo was taken, YYYY-MM-DD: its EXIF date, else its upload day (UTC), as the
// server's timeline order counts it.
const dayOf = (photo) => (photo.taken_at ?? new Date(photo.uploaded * 1000).toISOString()).slice(0, 10);

// A heading across the grid where a new day starts: "Sun, Aug 15, 2021".
function dayHeader(day) {
  const date = new Date(`${day}T00:00:00`);
  const text = Number.isNaN(date.getTime()) ? day
    : date.toLocaleDateString(undefined, { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' });
  return h('li', { class: 'day', testid: 'day-header', 'data-day': day }, h('h3', {}, text));
}

// The grid of one filtered photo list, 60 at a time: the next page loads as the end of the
// grid scrolls near the screen ("Load more" stays as the button to press without scrolling).
// A timeline asks for the newest taken first and heads each day.
function photoGrid(query, { path = '/api/photos', tile = photoTile, timeline = false } = {}) {
  const grid = h('ul', { class: tile === photoTile ? 'grid justified' : 'grid', testid: 'photo-grid' });
  const more = h('button', { type: 'button', testid: 'load-more', hidden: true }, 'Load more');
  const empty = h('p', { class: 'empty', testid: 'grid-empty', hidden: true }, 'No photos here yet.');
  let next = null;
  let lastDay = null;
  const load = async () => {
    const params = new URLSearchParams({ limit: 60, ...query, ...(timeline ? { order: 'taken' } : {}) });
    if (next) params.set('before', next);
    const page = await api('GET', `${path}?${params}`);
    for (const photo of page.photos) {
      if (timeline && dayOf(photo) !== lastDay) {
        lastDay = dayOf(photo);
        grid.append(dayHeader(lastDay));
      }
      grid.append(tile(photo));
    }
    next = page.next ?? null;
    more.hidden = next === null;
    empty.hidden = grid.children.length > 0;
  };
  // One page at a time, then again while the end is still near the screen (a tall window
  // can show more than one page; the observer only reports a change of visibility).
  let loading = false;
  const loadWhileNear = async () => {
    if (loading) return;
    loading = true;
    try {
      do await load();
      while (next !== null && more.isConnected && more.getBoundingClientRect().top < innerHeight + NEAR_PX);
    } finally {
      loading = false;
    }
  };
  more.addEventListener('click', () => attempt(loadWhileNear));
  new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) attempt(loadWhileNear);
  }, { rootMargin: `${NEAR_PX}px` }).observe(more);
  return { element: h('div', {}, grid, empty, more), load, hasMore: () => next !== null };
}

// How close to the screen the end of a grid comes before its next page loads.
const NEAR_PX = 600;

// A tile as wide as its photo's shape at the row's height: rows of whole photos, justified
// (style.css's .justified), instead of square crops.
function photoTile(photo) {
  const ratio = photo.width > 0 && photo.height > 0 ? Math.min(Math.max(photo.width / photo.height, 0.4), 3) : 1;
  const item = h('li', {},
    h('button', {
      type: 'button', class: 'tile', testid: 'photo-tile', 'data-photo-id': photo.id,
      'data-kind': photo.kind, title: photo.name, 'data-selected': selection.has(photo.id),
      onclick: (event) => tileClicked(event, photo.id),
    },
    // loading=lazy: the browser fetches a thumbnail only when it scrolls near the screen.
    h('img', { src: thumbnailUrl(photo.id), alt: photo.name, loading: 'lazy', width: 160, height: 160 }),
    photo.kind === 'video' ? h('span', { class: 'badge play', 'aria-label': 'video' }, '▶') : null,
    photo.favourite ? h('span', { class: 'badge', 'aria-label': 'favourite' }, '★') : null));
  // through the CSSOM: the page's Content-Security-Policy refuses style attributes
  item.style.setProperty('--ratio', ratio.toFixed(3));
  return item;
}

// --- selecting photos: shift- or ctrl-click, then act on all of them at once ---------------

const selection = new Set();
let anchor = null; // the last photo clicked into the selection: a shift-click's range starts here
const selectionBar = $('[data-testid=selection-bar]');

// A plain click opens the photo; with Shift or Ctrl/⌘, or while anything is selected, it
// selects. Shift-click selects the whole range from the last photo clicked, as in a file
// manager.
function tileClicked(event, id) {
  if (event.shiftKey && anchor !== null) {
    const ids = gridIds();
    const [from, to] = [ids.indexOf(anchor), ids.indexOf(id)].sort((a, b) => a - b);
    if (from >= 0) ids.slice(from, to + 1).forEach((each) => selection.add(each));
    else selection.add(id);
  } else if (event.shiftKey || event.ctrlKey || event.metaKey || selection.size) {
    if (selection.has(id)) selection.delete(id);
    else selection.add(id);
  } else {
    attempt(() => openPhoto(id));
    return;
  }
  anchor = id;
  showSelection();
}

function clearSelection() {
  selection.clear();
  anchor = null;
  showSelection();
}

document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && selection.size && !dialog.open) clearSelection();
});

// Marks the selected tiles and shows the bar of what can be done with them.
function showSelection() {
  for (const tile of document.querySelectorAll('[data-testid=photo-tile]')) {
    tile.toggleAttribute('data-selected', selection.has(Number(tile.dataset.photoId)));
  }
  selectionBar.hidden = selection.size === 0;
  if (!selection.size) return;
  $('[data-testid=selection-count]').textContent = `${plural(selection.size, 'photo')} selected`;
  $('[data-testid=selection-download]').href = `/api/photos/zip?ids=${[...selection].join(',')}`;
  const albums = $('[data-testid=selection-album]');
  if (!albums.dataset.loaded) {
    albums.dataset.loaded = 'yes';
    attempt(async () => {
      const list = await api('GET', '/api/albums');
      albums.replaceChildren(h('option', { value: '' }, 'Add to album…'),
        ...list.map((a) => h('option', { value: a.id }, a.name)));
    });
  }
}

$('[data-testid=selection-clear]').addEventListener('click', clearSelection);

$('[data-testid=selection-add]').addEventListener('click', () => attempt(async () => {
  const select = $('[data-testid=selection-album]');
  if (!select.value) throw new Error('Choose the album to add the photos to.');
  const count = selection.size;
  await api('POST', `/api/albums/${select.value}/photos`, { photo_ids: [...selection] });
  const name = select.selectedOptions[0].textContent;
  clearSelection();
  showMessage(`Added ${plural(count, 'photo')} to ${name}.`, 'notice');
}));

$('[data-testid=selection-trash]').addEventListener('click', () => attempt(async () => {
  const ids = [...selection];
  // One at a time: each is its own request, and one that fails leaves the rest as they were.
  for (const id of ids) await api('DELETE', `/api/photos/${id}`);
  clearSelection();
  refreshView();
  showMessage(`Moved ${plural(ids.length, 'photo')} to the trash.`, 'notice');
}));

// The selected photos in the order the grid shows them (a selection is a set; the frames of a
// GIF or a video follow the page, oldest first, as a story is told).
function selectedInGridOrder() {
  return [...document.querySelectorAll('[data-testid=photo-tile]')]
    .map((tile) => Number(tile.dataset.photoId))
    .filter((id) => selection.has(id))
    .reverse();
}

$('[data-testid=selection-gif]').addEventListener('click', () => attempt(async () => {
  const ids = selectedInGridOrder();
  if (ids.length < 2) throw new Error('Select at least two photos to make a GIF.');
  const gif = await api('POST', '/api/gifs', { photo_ids: ids.slice(0, 100) });
  clearSelection();
  refreshView();
  showMessage(`Made a GIF of ${plural(Math.min(ids.length, 100), 'photo')}: ${gif.name}.`, 'notice');
}));

// An album made since the bar last listed them shows up the next time it opens.
window.addEventListener('hashchange', () => { delete $('[data-testid=selection-album]').dataset.loaded; });

// The grid the viewer steps through with next/previous (the last photo view drawn).
let shownGrid = null;

// The timeline's scrubber: the last day of the month the grid starts at, or null for the
// newest. A new view starts at the newest again (route() clears it).
let scrubbedTo = null;
const MONTH_NAMES = [...Array(12).keys()].map((m) =>
  new Date(Date.UTC(2000, m, 1)).toLocaleDateString(undefined, { month: 'short', timeZone: 'UTC' }));

function lastDayOf(month) {
  const [year, m] = month.split('-').map(Number);
  return `${month}-${String(new Date(Date.UTC(year, m, 0)).getUTCDate()).padStart(2, '0')}`;
}

// A button per month that has photos, under its year; one click starts the grid there.
function scrubber(months) {
  if (months.length < 2) return null;
  const years = new Map();
  for (const { month, photos } of months) {
    const year = month.slice(0, 4);
    if (!years.has(year)) years.set(year, []);
    const current = scrubbedTo !== null && lastDayOf(month) === scrubbedTo;
    years.get(year).push(h('button', {
      type: 'button', class: 'month', testid: 'scrubber-month', 'data-month': month,
      'aria-current': current ? 'true' : null, title: plural(photos, 'photo'),
      onclick: () => { scrubbedTo = lastDayOf(month); refreshView(); },
    }, MONTH_NAMES[Number(month.slice(5, 7)) - 1]));
  }
  return h('nav', { class: 'scrubber', testid: 'scrubber', 'aria-label': 'Jump to a month' },
    scrubbedTo && h('button', {
      type: 'button', testid: 'scrubber-newest', onclick: () => { scrubbedTo = null; refreshView(); },
    }, '↑ Newest'),
    [...years].map(([year, buttons]) => h('div', { class: 'year' }, h('span', {}, year), ...buttons)));
}

async function photoView(title, query, stale, extra = [], lead = null) {
  const grid = photoGrid({ ...query, ...(scrubbedTo ? { to: scrubbedTo } : {}) }, { timeline: true });
  const [months] = await Promise.all([api('GET', `/api/photos/months?${new URLSearchParams(query)}`), grid.load()]);
  if (!stale()) shownGrid = grid;
  render(stale, h('h2', {}, title), h('div', { class: 'row' }, ...extra, ...montageControls(grid.element)),
    lead, montageStatus, h('div', { class: 'timeline' }, grid.element, scrubber(months)));
}

// --- video montages ------------------------------------------------------------------------

// One line under the view's title that follows the montage being made.
const montageStatus = h('p', { class: 'montage-status', testid: 'montage-status', role: 'status', hidden: true });
let montageTimer = null;

// "Make a video" of the selected photos, or of all the photos shown in the grid (not its
// videos), oldest first, as the server's limit allows, with the music file chosen beside it.
function montageControls(gridElement) {
  const music = h('input', { type: 'file', accept: 'audio/*', testid: 'montage-music' });
  return [montageButton(gridElement, music), h('label', { class: 'music' }, 'Music ', music)];
}

// The chosen music file, uploaded (the server checks it has sound); its id, or none.
async function uploadMusic(input) {
  const file = input.files[0];
  if (!file) return undefined;
  const form = new FormData();
  form.append('file', file, file.name);
  const response = await fetch('/api/music', { method: 'POST', body: form });
  if (!response.ok) throw await errorOf(response.status, await response.text());
  return (await response.json()).id;
}

function montageButton(gridElement, music) {
  return h('button', {
    type: 'button', testid: 'make-montage',
    onclick: () => attempt(async () => {
      const ids = [...gridElement.querySelectorAll('[data-testid=photo-tile]')]
        .filter((tile) => tile.dataset.kind !== 'video')
        .filter((tile) => !selection.size || selection.has(Number(tile.dataset.photoId)))
        .map((tile) => Number(tile.dataset.photoId))
        .reverse()
        .slice(0, 300);
      if (!ids.length) throw new Error('There are no photos here to make a video of.');
      const title = $('[data-testid=view] h2')?.textContent?.replace(/^\w+: /, '') || 'Montage';
      const musicId = await uploadMusic(music);
      const montage = await api('POST', '/api/montages', { photo_ids: ids, title, music_id: musicId });
      clearSelection();
      followMontage(montage.id);
    }),
  }, 'Make a video');
}

async function followMontage(id) {
  clearTimeout(montageTimer);
  const montage = await api('GET', `/api/montages/${id}`);
  montageStatus.hidden = false;
  montageStatus.dataset.state = montage.state;
  if (montage.state === 'done' && montage.video_id) {
    montageStatus.replaceChildren(`Video ready: ${montage.title} (${Math.round(montage.seconds)} s) `,
      h('button', { type: 'button', testid: 'montage-play', onclick: () => attempt(() => openPhoto(montage.video_id)) },
        'Play'));
    return;
  }
  if (montage.state === 'failed') {
    montageStatus.textContent = `The video could not be made: ${montage.error ?? 'unknown error'}`;
    return;
  }
  const done = Math.round(100 * montage.progress);
  montageStatus.textContent = `Making a video of ${plural(montage.photo_ids.length, 'photo')}: ` +
    (montage.state === 'queued' ? 'waiting for its turn' : `${done} %`);
  montageTimer = setTimeout(() => attempt(() => followMontage(id)), 1000);
}

// Cards for albums, categories, people and places: a cover, a title and a line of counts.
function card({ testid, href, cover, title, detail, children = [] }) {
  const image = cover ? h('img', { src: cover, alt: '', loading: 'lazy' }) : h('span', { class: 'no-cover' });
  return h('li', { class: 'card', testid },
    h('a', { href }, image, h('span', { class: 'card-title', testid: `${testid}-name` }, title)),
    h('span', { class: 'card-detail' }, detail), ...children);
}

// --- albums ------------------------------------------------------------------------------

async function albumsView(_, stale) {
  const albums = await api('GET', '/api/albums');
  const form = h('form', { class: 'row', testid: 'album-create' },
    h('label', {}, 'New album ', h('input', { name: 'name', required: true, maxlength: 200, testid: 'album-name' })),
    h('button', { type: 'submit' }, 'Create'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(async () => {
      const album = await api('POST', '/api/albums', { name: form.name.value });
      location.hash = `#album/${album.id}`;
    });
  });
  const list = h('ul', { class: 'cards', testid: 'album-list' }, albums.map((album) => card({
    testid: 'album-card', href: `#album/${album.id}`, title: album.name,
    cover: album.cover_photo_id && thumbnailUrl(album.cover_photo_id),
    detail: plural(album.photos, 'photo'),
  })));
  render(stale, h('h2', {}, 'Albums'), form, albums.length ? list : h('p', { class: 'empty' }, 'No albums yet.'));
}

async function albumView(id, stale) {
  const album = await api('GET', `/api/albums/${id}`);
  const remove = h('button', { type: 'button', class: 'danger', testid: 'album-delete' }, 'Delete album');
  remove.addEventListener('click', () => attempt(async () => {
    if (!confirm(`Delete the album "${album.name}"? Its photos stay in Photos.`)) return;
    await api('DELETE', `/api/albums/${id}`);
    location.hash = '#albums';
  }));
  await photoView(`Album: ${album.name}`, { album: id }, stale, [remove]);
}

// --- smart albums, people and places -------------------------------------------------------

async function categoriesView(_, stale) {
  const categories = await api('GET', '/api/categories');
  render(stale, h('h2', {}, 'Categories'),
    h('p', { class: 'hint' }, 'Sorted by the classifier; a correction in a photo\'s view sticks.'),
    categories.length
      ? h('ul', { class: 'cards', testid: 'category-list' }, categories.map((c) => card({
        testid: 'category-card', href: `#category/${encodeURIComponent(c.name)}`, title: c.name,
        cover: thumbnailUrl(c.cover_photo_id),
        detail: [plural(c.photos, 'photo'), c.corrected ? `${c.corrected} corrected` : null,
          c.mean_confidence != null ? `mean confidence ${Math.round(100 * c.mean_confidence)}%` : null]
          .filter(Boolean).join(' · '),
      })))
      : h('p', { class: 'empty' }, 'No photo is classified yet; that runs in the background after upload.'));
}

// What People shows: those in at least this many photos, and the hidden ones or not.
const peopleShown = { minPhotos: 1, hidden: false };

async function peopleView(_, stale) {
  const people = await api('GET', `/api/people${peopleShown.hidden ? '?hidden=true' : ''}`);
  const listed = people.filter((person) => person.photos >= peopleShown.minPhotos);
  const minimum = h('select', { testid: 'people-min', 'aria-label': 'In at least' },
    [1, 2, 3, 5, 10].map((n) => h('option', { value: n, selected: n === peopleShown.minPhotos }, plural(n, 'photo'))));
  minimum.addEventListener('change', () => {
    peopleShown.minPhotos = Number(minimum.value);
    refreshView();
  });
  const hidden = h('input', { type: 'checkbox', testid: 'people-show-hidden', checked: peopleShown.hidden });
  hidden.addEventListener('change', () => {
    peopleShown.hidden = hidden.checked;
    refreshView();
  });
  const controls = h('div', { class: 'row' }, h('label', {}, 'In at least ', minimum),
    h('label', {}, hidden, ' Show hidden people'));
  render(stale, h('h2', {}, 'People'), controls,
    listed.length
      ? h('ul', { class: 'cards', testid: 'people-list' }, listed.map((person) => personCard(person, people)))
      : h('p', { class: 'empty', testid: 'people-empty' }, people.length
        ? 'Nobody here is in that many photos.'
        : 'No people yet: faces are found in the background after upload.'));
}

const personName = (person) => person.name || `Unnamed person ${person.id}`;

// Merging moves every face of this person to the one chosen; this one is gone after.
function mergeForm(person, everyone) {
  const others = everyone.filter((other) => other.id !== person.id);
  if (!others.length) return null;
  const into = h('select', { name: 'into', testid: 'person-merge-into', 'aria-label': 'Merge into' },
    h('option', { value: '' }, 'Same person as…'),
    others.map((other) => h('option', { value: other.id }, personName(other))));
  const form = h('form', { class: 'row merge', testid: 'person-merge-form' },
    into, h('button', { type: 'submit', testid: 'person-merge' }, 'Merge'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(async () => {
      if (!into.value) throw new Error('Choose the person to merge with.');
      const target = into.selectedOptions[0].textContent;
      if (!confirm(`Merge ${personName(person)} into ${target}? Their faces all go to ${target}.`)) return;
      await api('POST', `/api/people/${person.id}/merge`, { into: Number(into.value) });
      showMessage(`Merged into ${target}.`, 'notice');
      refreshView();
    });
  });
  return form;
}

function personCard(person, everyone = []) {
  const input = h('input', {
    name: 'name', value: person.name ?? '', placeholder: 'Add a name', maxlength: 100,
    testid: 'person-name-input', 'aria-label': 'Name',
  });
  const form = h('form', { class: 'row rename', testid: 'person-rename-form' },
    input, h('button', { type: 'submit', testid: 'person-rename' }, 'Save'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(async () => {
      await api('PATCH', `/api/people/${person.id}`, { name: input.value });
      refreshView(); // a new ticket: any list fetched before the rename is dropped
    });
  });
  // Hidden people leave People and search; their photos stay where they are.
  const hide = h('button', { type: 'button', testid: 'person-hide' }, person.hidden ? 'Unhide' : 'Hide');
  hide.addEventListener('click', () => attempt(async () => {
    await api('PATCH', `/api/people/${person.id}`, { hidden: !person.hidden });
    refreshView();
  }));
  const item = card({
    testid: 'person-card', href: `#person/${person.id}`,
    title: person.name || 'Unnamed person',
    cover: person.cover_face_id && `/api/faces/${person.cover_face_id}/thumbnail`,
    detail: plural(person.photos, 'photo') + (person.hidden ? ' · hidden' : ''),
    children: [form, mergeForm(person, everyone), hide],
  });
  item.dataset.personId = person.id;
  item.toggleAttribute('data-hidden', person.hidden);
  return item;
}

async function personView(id, stale) {
  const [person, similar] = await Promise.all([
    api('GET', `/api/people/${id}`), api('GET', `/api/people/${id}/similar`)]);
  await photoView(person.name || 'Unnamed person', { person: id }, stale, [], samePerson(person, similar));
}

// "Same person?": people whose faces come close to this person's (the server's suggestions,
// most alike first), each with its face, how alike, and Yes (merge it into this person) or
// No (it goes from the list until the page is next opened).
function samePerson(person, similar) {
  if (!similar.length) return null;
  const list = h('ul', { class: 'cards suggestions' });
  const section = h('section', { class: 'same-person', testid: 'same-person' },
    h('h3', {}, `Same person as ${personName(person)}?`), list);
  for (const { person: other, similarity } of similar) {
    const yes = h('button', { type: 'button', testid: 'same-person-yes' }, 'Yes, merge');
    const no = h('button', { type: 'button', testid: 'same-person-no' }, 'No');
    const item = card({
      testid: 'same-person-card', href: `#person/${other.id}`, title: personName(other),
      cover: other.cover_face_id && `/api/faces/${other.cover_face_id}/thumbnail`,
      detail: `${Math.round(100 * similarity)} % alike · ${plural(other.photos, 'photo')}`,
      children: [h('div', { class: 'row' }, yes, no)],
    });
    yes.addEventListener('click', () => attempt(async () => {
      await api('POST', `/api/people/${other.id}/merge`, { into: person.id });
      showMessage(`${personName(other)} merged into ${personName(person)}.`, 'notice');
      refreshView();
    }));
    no.addEventListener('click', () => {
      item.remove();
      if (!list.children.length) section.remove();
    });
    list.append(item);
  }
  return section;
}

// "FR" → "France", in the reader's language; a code the browser does not know stays a code.
function countryName(code) {
  try {
    return new Intl.DisplayNames(undefined, { type: 'region' }).of(code) ?? code;
  } catch {
    return code;
  }
}

// --- the map: the world's land (vendored, sent by the server) with a marker per place -----

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'testid') element.dataset.testid = value;
    else element.setAttribute(key, value);
  }
  element.append(...children);
  return element;
}

// The land's outline as one SVG path in degrees (x = longitude + 180, y = 90 - latitude:
// the equirectangular projection, so the viewBox is 360 × 180). TopoJSON keeps shared
// borders once, as quantised, delta-coded arcs; a ring lists its arcs (~i: arc i reversed).
function landPath(topology) {
  const [sx, sy] = topology.transform.scale;
  const [tx, ty] = topology.transform.translate;
  const arcs = topology.arcs.map((arc) => {
    let x = 0;
    let y = 0;
    return arc.map(([dx, dy]) => {
      x += dx;
      y += dy;
      return [x * sx + tx + 180, 90 - (y * sy + ty)];
    });
  });
  const ring = (indices) => indices.flatMap((index, i) => {
    const points = index < 0 ? [...arcs[~index]].reverse() : arcs[index];
    return i ? points.slice(1) : points; // each arc starts where the last one ended
  });
  const polygons = (geometry) => (geometry.type === 'Polygon' ? [geometry.arcs]
    : geometry.type === 'MultiPolygon' ? geometry.arcs
      : (geometry.geometries ?? []).flatMap(polygons));
  // A ring that crosses the antimeridian jumps from one edge of the map to the other:
  // lift the pen there instead of drawing a line across the world.
  const draw = (points) => points.map(([x, y], i) => {
    const jump = i === 0 || Math.abs(x - points[i - 1][0]) > 180;
    return `${jump ? 'M' : 'L'}${x.toFixed(2)},${y.toFixed(2)}`;
  }).join('');
  return polygons(Object.values(topology.objects)[0])
    .flatMap((rings) => rings.map((r) => `${draw(ring(r))}Z`))
    .join('');
}

let basemap = null; // the land's path, fetched once
async function placesMap(places) {
  basemap ??= landPath(await api('GET', '/basemap.json'));
  const markers = places.filter((p) => p.latitude != null && p.longitude != null).map((place) =>
    svg('a', { href: `#place/${place.id}` },
      svg('circle', {
        class: 'marker', testid: 'map-marker', 'data-place-id': place.id, r: 2.2,
        cx: (place.longitude + 180).toFixed(3), cy: (90 - place.latitude).toFixed(3),
      }, svg('title', {}, `${place.name}, ${countryName(place.country)}: ${plural(place.photos, 'photo')}`))));
  return svg('svg', { class: 'map', testid: 'places-map', viewBox: '0 0 360 180', role: 'img',
    'aria-label': `A map of ${plural(markers.length, 'place')}` },
  svg('rect', { class: 'sea', width: 360, height: 180 }), svg('path', { class: 'land', d: basemap }), ...markers);
}

async function placesView(_, stale) {
  const places = await api('GET', '/api/places');
  render(stale, h('h2', {}, 'Places'),
    places.length ? await placesMap(places) : null,
    places.length
      ? h('ul', { class: 'cards', testid: 'place-list' }, places.map((p) => card({
        testid: 'place-card', href: `#place/${p.id}`, title: p.name,
        cover: thumbnailUrl(p.cover_photo_id),
        detail: `${[p.admin1, p.country && countryName(p.country)].filter(Boolean).join(', ')} · ${plural(p.photos, 'photo')}`,
      })))
      : h('p', { class: 'empty' }, 'No places yet: they come from the GPS position in a photo\'s EXIF.'));
}

async function placeView(id, stale) {
  const place = (await api('GET', '/api/places')).find((p) => String(p.id) === String(id));
  await photoView(place ? `${place.name}, ${countryName(place.country)}` : 'Place', { place: id }, stale);
}

// --- search --------------------------------------------------------------------------------

$('[data-testid=search-form]').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = event.target.q.value.trim();
  if (text) location.hash = `#search/${encodeURIComponent(text)}`;
});

// "2021", "2021-08" or "2021-08-15" as the first and last day it covers; else null.
function dateRange(text) {
  const match = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/.exec(text);
  if (!match) return null;
  const [, year, month, day] = match;
  if (day) return { from: text, to: text };
  if (month) {
    const last = new Date(Date.UTC(Number(year), Number(month), 0)).getUTCDate();
    return { from: `${year}-${month}-01`, to: `${year}-${month}-${String(last).padStart(2, '0')}` };
  }
  return { from: `${year}-01-01`, to: `${year}-12-31` };
}

// What a search finds: people by name, categories, places (town, region or country) and a
// date (a year, a month or a day), each with its photos.
async function searchView(text, stale) {
  const wanted = (text ?? '').toLowerCase();
  const [people, categories, places] = await Promise.all(
    [api('GET', '/api/people'), api('GET', '/api/categories'), api('GET', '/api/places')]);
  const has = (value) => Boolean(value) && value.toLowerCase().includes(wanted);
  const range = dateRange(wanted);
  const matches = [
    ...people.filter((p) => has(p.name)).map((p) => ({ kind: 'person', title: p.name, query: { person: p.id } })),
    ...categories.filter((c) => has(c.name)).map((c) => ({ kind: 'category', title: c.name, query: { category: c.name } })),
    ...places.filter((p) => has(p.name) || has(p.admin1) || has(countryName(p.country)))
      .map((p) => ({ kind: 'place', title: `${p.name}, ${countryName(p.country)}`, query: { place: p.id } })),
    ...(range ? [{ kind: 'date', title: text, query: range }] : []),
  ].slice(0, 8);
  const sections = [];
  for (const match of matches) {
    const grid = photoGrid(match.query, { timeline: true });
    await grid.load();
    sections.push(h('section', { class: 'result', testid: 'search-result', 'data-kind': match.kind },
      h('h3', {}, `${match.title} · ${match.kind}`), grid.element));
  }
  if (!sections.length) {
    sections.push(h('p', { class: 'empty', testid: 'search-empty' },
      `Nothing matches "${text}". Search looks at people's names, categories, places and dates (2021, 2021-08).`));
  }
  render(stale, h('h2', {}, `Search: ${text}`), ...sections);
}

// --- trash ---------------------------------------------------------------------------------

async function trashView(_, stale) {
  const grid = photoGrid({}, { path: '/api/trash', tile: trashTile });
  await grid.load();
  const empty = h('button', { type: 'button', class: 'danger', testid: 'trash-empty' }, 'Empty trash');
  empty.addEventListener('click', () => attempt(async () => {
    if (!confirm('Delete every photo in the trash for good?')) return;
    await api('DELETE', '/api/trash');
    refreshView();
  }));
  render(stale, h('h2', {}, 'Trash'),
    h('p', { class: 'hint' }, 'Photos here are deleted for good after 30 days.'),
    h('div', { class: 'row' }, empty), grid.element);
}

function trashTile(photo) {
  const restore = h('button', { type: 'button', testid: 'trash-restore' }, 'Restore');
  restore.addEventListener('click', () => attempt(async () => {
    await api('POST', `/api/photos/${photo.id}/restore`);
    refreshView();
  }));
  const purge = h('button', { type: 'button', class: 'danger', testid: 'trash-purge' }, 'Delete for good');
  purge.addEventListener('click', () => attempt(async () => {
    if (!confirm(`Delete "${photo.name}" for good?`)) return;
    await api('DELETE', `/api/trash/${photo.id}`);
    refreshView();
  }));
  return h('li', { class: 'trash-tile', testid: 'trash-tile', 'data-photo-id': photo.id },
    h('img', { src: thumbnailUrl(photo.id), alt: photo.name, loading: 'lazy', width: 160, height: 160 }),
    h('div', { class: 'row' }, restore, purge));
}

// ---------------------------------------------------------------------------------------
// The photo view (a modal <dialog>: focus stays inside it and Escape closes it)
// ---------------------------------------------------------------------------------------

const dialog = $('[data-testid=photo-dialog]');
let shown = null; // the PhotoInfo in the dialog

async function openPhoto(id) {
  const [photo, albums] = await Promise.all([api('GET', `/api/photos/${id}`), api('GET', '/api/albums')]);
  fillPhoto(photo);
  $('[data-testid=photo-album]').replaceChildren(
    ...albums.map((a) => h('option', { value: a.id }, a.name)));
  $('[data-testid=album-form]').hidden = albums.length === 0;
  $('[data-testid=photo-album-remove]').hidden = current.view !== 'album';
  if (!dialog.open) {
    dialog.showModal();
    // An entry of its own in the history, so that Back (a phone's above all) closes the
    // viewer instead of leaving the view behind it.
    history.pushState({ viewer: true }, '');
  }
}

window.addEventListener('popstate', () => {
  if (dialog.open) dialog.close();
});

// --- next and previous: buttons, the arrow keys and a swipe, in the grid's order ---------

// The ids of the photos in the view's grid, in the order shown.
const gridIds = () => [...document.querySelectorAll('[data-testid=view] [data-testid=photo-tile]')]
  .map((tile) => Number(tile.dataset.photoId));

// Shows the photo `step` places on (+1) or back (-1) from the one shown; past the last
// loaded photo the grid's next page is fetched first.
async function stepPhoto(step) {
  if (!shown) return;
  let ids = gridIds();
  let at = ids.indexOf(shown.id);
  if (at < 0) return; // opened from elsewhere (a montage's Play): no grid order to follow
  if (at + step >= ids.length && shownGrid?.hasMore()) {
    await shownGrid.load();
    ids = gridIds();
    at = ids.indexOf(shown.id);
  }
  const id = ids[at + step];
  if (id !== undefined) await openPhoto(id);
}

// The buttons are there only where a step can be taken.
function showSteps() {
  const ids = gridIds();
  const at = shown ? ids.indexOf(shown.id) : -1;
  $('[data-testid=photo-previous]').disabled = at <= 0;
  $('[data-testid=photo-next]').disabled = at < 0 || (at === ids.length - 1 && !shownGrid?.hasMore());
}

$('[data-testid=photo-previous]').addEventListener('click', () => attempt(() => stepPhoto(-1)));
$('[data-testid=photo-next]').addEventListener('click', () => attempt(() => stepPhoto(1)));

// On the document, not the dialog: a step to the last photo disables the focused Next
// button, and the keys that follow then come from the body.
document.addEventListener('keydown', (event) => {
  if (!dialog.open) return;
  // Arrow keys belong to a field being typed in, a list being chosen from and a video
  // being watched (they seek); a hidden video can still hold the focus the dialog gave it.
  const target = event.target;
  if (target.closest?.('input, select, textarea') || (target.tagName === 'VIDEO' && !target.hidden)) return;
  const step = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
  if (!step) return;
  event.preventDefault();
  attempt(() => stepPhoto(step));
});

// A horizontal swipe over the photo: to the left shows the next one.
let touchStart = null;
const photoArea = $('[data-testid=photo-preview]');
photoArea.addEventListener('touchstart', (event) => {
  const touch = event.changedTouches[0];
  touchStart = { x: touch.clientX, y: touch.clientY };
}, { passive: true });
photoArea.addEventListener('touchend', (event) => {
  if (!touchStart) return;
  const touch = event.changedTouches[0];
  const dx = touch.clientX - touchStart.x;
  const dy = touch.clientY - touchStart.y;
  touchStart = null;
  if (Math.abs(dx) > 50 && Math.abs(dx) > 2 * Math.abs(dy)) attempt(() => stepPhoto(dx < 0 ? 1 : -1));
});

function fillPhoto(photo) {
  // A change (favourite, category) answers with the photo alone: its people stay as read.
  if (!photo.people && shown?.id === photo.id) photo.people = shown.people;
  shown = photo;
  const isVideo = photo.kind === 'video';
  const preview = $('[data-testid=photo-preview]');
  preview.hidden = isVideo;
  preview.src = `/api/photos/${photo.id}/preview`;
  preview.alt = photo.name;
  // A video plays in place, its poster frame shown until it starts.
  const video = $('[data-testid=photo-video]');
  video.hidden = !isVideo;
  if (isVideo) {
    video.poster = `/api/photos/${photo.id}/preview`;
    if (!video.src.endsWith(`/api/photos/${photo.id}/original`)) video.src = `/api/photos/${photo.id}/original`;
  } else if (video.getAttribute('src')) {
    video.pause();
    video.removeAttribute('src');
    video.load();
  }
  $('[data-testid=category-form]').hidden = isVideo;
  $('[data-testid=photo-name]').textContent = photo.name;
  const favourite = $('[data-testid=photo-favourite]');
  favourite.setAttribute('aria-pressed', String(photo.favourite));
  favourite.textContent = photo.favourite ? '★ Favourite' : '☆ Favourite';
  const download = $('[data-testid=photo-download]');
  download.href = `/api/photos/${photo.id}/original`;
  download.download = photo.name;
  $('[data-testid=photo-category]').value = photo.category ?? '';
  const camera = [photo.camera_make, photo.camera_model].filter(Boolean).join(' ');
  const category = photo.category
    ? `${photo.category} (${photo.category_manual ? 'corrected' : `${Math.round(100 * photo.confidence)}% sure`})`
    : 'not classified yet';
  const rows = [
    // EXIF times have no zone: read as local, they print as the camera wrote them
    ['Taken', photo.taken_at ? dateTime(photo.taken_at) : 'unknown'],
    ['Uploaded', dateTime(photo.uploaded * 1000)],
    ['Size', `${photo.width} × ${photo.height}, ${(photo.bytes / 1024).toFixed(0)} KiB ${photo.kind}`],
    ['Camera', camera || null],
    ['Place', photo.place ?? null],
    ['People', photo.people?.length ? peopleLinks(photo.people) : null],
    ['Category', category],
  ].filter(([, value]) => value);
  $('[data-testid=photo-details]').replaceChildren(
    ...rows.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
  showSteps();
}

// Who is in the photo, each a link to their photos (following one closes the viewer), and
// "Not them?" to move this photo's faces of that person to someone else or to a new person.
function peopleLinks(people) {
  const entries = people.map((person) => {
    const name = personName(person);
    const link = h('a', { href: `#person/${person.id}`, testid: 'photo-person' }, name);
    const move = h('button', {
      type: 'button', class: 'link', testid: 'photo-person-move', 'aria-label': `Not ${name}? Move this face`,
    }, 'Not them?');
    const entry = h('span', { class: 'photo-person', testid: 'photo-person-entry' }, link, ' ', move);
    move.addEventListener('click', () => attempt(async () => {
      entry.replaceChildren(link, ' ', await moveFaceMenu(person));
    }));
    return entry;
  });
  return h('span', { testid: 'photo-people' }, ...entries.flatMap((entry, i) => (i ? [', ', entry] : [entry])));
}

// The people a face can go to: someone new, or anyone else (most photos first, as People
// lists them). Choosing splits the face off, then merges it into the one chosen.
async function moveFaceMenu(person) {
  const others = (await api('GET', '/api/people')).filter((other) => other.id !== person.id);
  const select = h('select', { testid: 'photo-person-move-to', 'aria-label': 'Move this face to' },
    h('option', { value: '' }, 'Move to…'),
    h('option', { value: 'new' }, 'Someone new'),
    others.map((other) => h('option', { value: other.id }, personName(other))));
  select.addEventListener('change', () => attempt(async () => {
    if (!select.value) return;
    const made = await api('POST', `/api/people/${person.id}/split`, { face_ids: person.face_ids });
    if (select.value !== 'new') {
      await api('POST', `/api/people/${made.id}/merge`, { into: Number(select.value) });
    }
    fillPhoto(await api('GET', `/api/photos/${shown.id}`));
    dirty = true;
    showMessage(`Moved to ${select.selectedOptions[0].textContent === 'Someone new'
      ? 'a new person' : select.selectedOptions[0].textContent}.`, 'notice');
  }));
  return select;
}

// Changes made in the dialog also change the grid behind it; redraw it on close.
let dirty = false;
dialog.addEventListener('close', () => {
  const video = $('[data-testid=photo-video]');
  if (video.getAttribute('src')) {
    video.pause();
    video.removeAttribute('src');
    video.load();
  }
  shown = null;
  if (dirty) refreshView();
  dirty = false;
  // Closed by its button, Escape or an action: drop the viewer's history entry too.
  if (history.state?.viewer) history.back();
});

$('[data-testid=photo-close]').addEventListener('click', () => dialog.close());

$('[data-testid=photo-favourite]').addEventListener('click', () => attempt(async () => {
  fillPhoto(await api('PATCH', `/api/photos/${shown.id}`, { favourite: !shown.favourite }));
  dirty = true;
}));

$('[data-testid=category-form]').addEventListener('submit', (event) => {
  event.preventDefault();
  attempt(async () => {
    const category = event.target.category.value || null;
    fillPhoto(await api('PUT', `/api/photos/${shown.id}/category`, { category }));
    dirty = true;
    showMessage('Category corrected.', 'notice');
  });
});

$('[data-testid=album-form]').addEventListener('submit', (event) => {
  event.preventDefault();
  const select = event.target.album;
  attempt(async () => {
    await api('POST', `/api/albums/${select.value}/photos`, { photo_ids: [shown.id] });
    dirty = true;
    showMessage(`Added to ${select.selectedOptions[0].textContent}.`, 'notice');
  });
});

$('[data-testid=photo-album-remove]').addEventListener('click', () => attempt(async () => {
  await api('DELETE', `/api/albums/${current.id}/photos/${shown.id}`);
  dirty = true;
  dialog.close();
}));

$('[data-testid=photo-trash]').addEventListener('click', () => attempt(async () => {
  await api('DELETE', `/api/photos/${shown.id}`);
  dirty = true;
  dialog.close();
  showMessage('Moved to the trash.', 'notice');
}));

// ---------------------------------------------------------------------------------------
// Background jobs: a line in the header, polled while signed in. When work finishes, the
// views that depend on it (categories, people, places) redraw, unless the user is typing.
// ---------------------------------------------------------------------------------------

let jobsTimer = null;
let lastDone = null;

async function pollJobs() {
  clearTimeout(jobsTimer);
  if (!me || document.hidden) return; // visibilitychange starts it again
  try {
    const { total, failed } = await api('GET', '/api/jobs');
    const pending = total.queued + total.running;
    const line = $('[data-testid=jobs]');
    line.hidden = false;
    line.dataset.pending = pending;
    const idle = uploading ? 'Uploading photos' : 'All caught up';
    line.textContent = (pending ? `Working: ${plural(pending, 'job')} left` : idle) +
      (failed.length ? ` · ${failed.length} failed` : '');
    const typing = document.activeElement?.matches('main input, main select');
    if (lastDone !== null && total.done !== lastDone && !typing && !dialog.open &&
        ['categories', 'people', 'places'].includes(current.view)) {
      refreshView();
    }
    lastDone = total.done;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signedOut();
  }
  // Poll often while work is pending, seldom when idle, never while the tab is hidden.
  const pending = Number($('[data-testid=jobs]').dataset.pending || 0);
  clearTimeout(jobsTimer); // two overlapping polls (a quick sign-out and in) leave one loop
  jobsTimer = setTimeout(pollJobs, pending ? 2000 : 10000);
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) pollJobs();
});

// ---------------------------------------------------------------------------------------
// Start: already signed in (a live cookie) or not.
// ---------------------------------------------------------------------------------------

api('GET', '/api/me').then(signedIn, () => signedOut());
