//! [`add_counters!`]: the field-by-field `add`/`merge` of plain counter
//! structs (L7 parser counters, reassembly and fragment counters).

/// Adds counter struct `$from` into `$into`: `+=` for each listed field,
/// the larger value for those after `max`, `+=` per element for the arrays
/// after `each`. `$from` is destructured exhaustively, so a field added to
/// the struct but not listed here does not compile.
macro_rules! add_counters {
    ($into:ident += $from:ident : $ty:ident {
        $($sum:ident),* $(,)?
        $(; max $($max:ident),+)?
        $(; each $($each:ident),+)?
    }) => {{
        let $ty {
            $($sum,)*
            $($($max,)+)?
            $($($each,)+)?
        } = $from;
        $($into.$sum += $sum;)*
        $($($into.$max = $into.$max.max(*$max);)+)?
        $($(for (x, y) in $into.$each.iter_mut().zip($each) {
            *x += y;
        })+)?
    }};
}

pub(crate) use add_counters;
