# accuracy.gp — reversal accuracy per model and question set, with standard
# error bars (gnuplot -e "tsv='..'; png='..'; chance=0.25").
set terminal png size 800,500
set output png
set datafile separator "\t"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.6 border -1
set yrange [0:1]
set ylabel "accuracy (multiple choice)"
set title "Reversal: trained A's mentor is B; asked both ways"
set key top right
set grid y
plot tsv using 4:5:xtic(2) every ::0::2 skip 1 title "AR", \
     '' using 4:5 every ::3::5 skip 1 title "diffusion", \
     chance with lines dt 2 lc rgb "black" title "chance"
