//! The query algorithm shared by every backend: selection bounds, RSM
//! paging, `complete`, `<count/>` and `<first index/>`.

use super::{
    ArchiveBounds, ArchiveFilter, ArchiveId, ArchivePage, ArchiveQuery, ArchivedMessage, WithJid,
};

/// When a selection has no stored total (a time or id range, or a full-JID
/// `with`), its `<count/>` is found by counting matches; past this many the
/// count is left out (RSM makes it optional) rather than scan an arbitrarily
/// large range for every page.
pub const COUNT_SCAN_LIMIT: u64 = 2_000;

/// Messages in id order, lazily read from the backend.
pub type Scan<'a, E> = Box<dyn Iterator<Item = Result<ArchivedMessage, E>> + 'a>;

/// One account's archive as a backend exposes it.
pub trait ArchiveView {
    /// The backend's failure.
    type Error;
    /// Messages with `lo <= id <= hi`, oldest first (newest first with
    /// `rev`); with `with_bare`, only those whose `with` has that bare JID.
    fn scan(
        &self,
        lo: ArchiveId,
        hi: ArchiveId,
        with_bare: Option<&str>,
        rev: bool,
    ) -> Scan<'_, Self::Error>;
    /// One message by id.
    fn get(&self, id: ArchiveId) -> Result<Option<ArchivedMessage>, Self::Error>;
    /// How many messages there are (with `with_bare`: with that bare JID).
    fn count(&self, with_bare: Option<&str>) -> Result<u64, Self::Error>;
    /// How many messages with `lo <= id <= hi` match `with`, when at most
    /// `limit` do (`None` beyond). The default counts a scan; a backend
    /// that can count without reading the messages (SQL) overrides it.
    fn count_range(
        &self,
        lo: ArchiveId,
        hi: ArchiveId,
        with: Option<&WithJid>,
        limit: u64,
    ) -> Result<Option<u64>, Self::Error> {
        let mut n = 0u64;
        for m in self.scan(lo, hi, with.map(|w| w.bare.as_str()), false) {
            let m = m?;
            if with.is_none_or(|w| w.matches(&m.with)) {
                n += 1;
                if n > limit {
                    return Ok(None);
                }
            }
        }
        Ok(Some(n))
    }
}

/// Why a query has no page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError<E> {
    /// An id named by the query (RSM after/before, after-id, before-id,
    /// ids) is not in the archive: XEP-0313 asks for item-not-found.
    UnknownId(ArchiveId),
    /// The backend failed.
    Backend(E),
}

impl<E> From<E> for QueryError<E> {
    fn from(e: E) -> Self {
        QueryError::Backend(e)
    }
}

/// The id range the filter's time and id bounds allow; `None` when empty.
fn selection_bounds(f: &ArchiveFilter) -> Option<(ArchiveId, ArchiveId)> {
    let mut lo = ArchiveId::MIN;
    let mut hi = ArchiveId::MAX;
    if let Some(start) = f.start {
        lo = lo.max(ArchiveId::first_at(start));
    }
    if let Some(end) = f.end {
        hi = hi.min(ArchiveId::last_at(end));
    }
    if let Some(a) = f.after_id {
        lo = lo.max(a.next()?);
    }
    if let Some(b) = f.before_id {
        hi = hi.min(b.prev()?);
    }
    (lo <= hi).then_some((lo, hi))
}

/// Answer `q` from `view`.
pub fn run_query<V: ArchiveView>(
    view: &V,
    q: &ArchiveQuery,
) -> Result<ArchivePage, QueryError<V::Error>> {
    let (f, p) = (&q.filter, &q.page);
    let named = [f.after_id, f.before_id, p.after, p.before];
    for id in named.into_iter().flatten() {
        if view.get(id)?.is_none() {
            return Err(QueryError::UnknownId(id));
        }
    }
    if let Some(ids) = &f.ids {
        return ids_page(view, q, ids);
    }
    let Some((lo, hi)) = selection_bounds(f) else {
        return Ok(empty_page(Some(0)));
    };
    let count = selection_count(view, f, lo, hi)?;
    // The page's own range inside the selection.
    let page_lo = match p.after {
        Some(a) => a.next().map(|n| n.max(lo)),
        None => Some(lo),
    };
    let page_hi = match p.before {
        Some(b) => b.prev().map(|n| n.min(hi)),
        None => Some(hi),
    };
    let (Some(page_lo), Some(page_hi)) = (page_lo, page_hi) else {
        return Ok(empty_page(count));
    };
    if page_lo > page_hi {
        return Ok(empty_page(count));
    }
    let with_bare = f.with.as_ref().map(|w| w.bare.as_str());
    let mut items = Vec::new();
    for m in view.scan(page_lo, page_hi, with_bare, p.backward) {
        let m = m?;
        if f.with.as_ref().is_none_or(|w| w.matches(&m.with)) {
            items.push(m);
            // One more than the page shows whether there is more.
            if items.len() > p.max {
                break;
            }
        }
    }
    let complete = items.len() <= p.max;
    items.truncate(p.max);
    if p.backward {
        items.reverse();
    }
    let len = items.len() as u64;
    let first_index = if items.is_empty() {
        None
    } else if (!p.backward && p.after.is_none()) || (p.backward && complete) {
        // The page starts where the selection starts.
        Some(0)
    } else if (p.backward && p.before.is_none()) || (!p.backward && complete) {
        // The page ends where the selection ends.
        count.map(|c| c.saturating_sub(len))
    } else {
        None
    };
    Ok(ArchivePage {
        items,
        complete,
        count,
        first_index,
    })
}

fn empty_page(count: Option<u64>) -> ArchivePage {
    ArchivePage {
        items: Vec::new(),
        complete: true,
        count,
        first_index: None,
    }
}

/// `<count/>` of the selection: a stored total when the selection is a
/// whole archive or one bare JID's part of it, else a bounded count.
fn selection_count<V: ArchiveView>(
    view: &V,
    f: &ArchiveFilter,
    lo: ArchiveId,
    hi: ArchiveId,
) -> Result<Option<u64>, V::Error> {
    let whole_range = lo == ArchiveId::MIN && hi == ArchiveId::MAX;
    let bare_or_none = f.with.as_ref().is_none_or(|w| w.resource.is_none());
    let with_bare = f.with.as_ref().map(|w| w.bare.as_str());
    if whole_range && bare_or_none {
        return view.count(with_bare).map(Some);
    }
    view.count_range(lo, hi, f.with.as_ref(), COUNT_SCAN_LIMIT)
}

/// The #extended `ids` field: exactly the named messages (all must exist)
/// that also pass the other filters, paged like any selection.
fn ids_page<V: ArchiveView>(
    view: &V,
    q: &ArchiveQuery,
    ids: &[ArchiveId],
) -> Result<ArchivePage, QueryError<V::Error>> {
    let (f, p) = (&q.filter, &q.page);
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let bounds = selection_bounds(f);
    let mut selection = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(m) = view.get(id)? else {
            return Err(QueryError::UnknownId(id));
        };
        let in_range = bounds.is_some_and(|(lo, hi)| lo <= id && id <= hi);
        if in_range && f.with.as_ref().is_none_or(|w| w.matches(&m.with)) {
            selection.push(m);
        }
    }
    let count = selection.len() as u64;
    let start = p
        .after
        .map_or(0, |a| selection.partition_point(|m| m.id <= a));
    let end = p
        .before
        .map_or(selection.len(), |b| selection.partition_point(|m| m.id < b));
    let (start, end) = (start, end.max(start));
    let (from, to, complete) = if p.backward {
        let from = end.saturating_sub(p.max).max(start);
        (from, end, from == start)
    } else {
        let to = start.saturating_add(p.max).min(end);
        (start, to, to == end)
    };
    let items: Vec<ArchivedMessage> = selection.drain(from..to).collect();
    let first_index = (!items.is_empty()).then_some(from as u64);
    Ok(ArchivePage {
        items,
        complete,
        count: Some(count),
        first_index,
    })
}

/// The first and last message (`None` for an empty archive).
pub fn metadata<V: ArchiveView>(view: &V) -> Result<Option<ArchiveBounds>, V::Error> {
    let first = view
        .scan(ArchiveId::MIN, ArchiveId::MAX, None, false)
        .next()
        .transpose()?;
    let last = view
        .scan(ArchiveId::MIN, ArchiveId::MAX, None, true)
        .next()
        .transpose()?;
    Ok(match (first, last) {
        (Some(f), Some(l)) => Some(ArchiveBounds {
            first: f.id,
            last: l.id,
        }),
        _ => None,
    })
}
